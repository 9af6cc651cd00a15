import type { CheckSpec } from './spec.js';

export const familyScaleChecks: CheckSpec[] = [];
