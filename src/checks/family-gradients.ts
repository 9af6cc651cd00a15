import type { CheckSpec } from './spec.js';

export const familyGradientChecks: CheckSpec[] = [];
