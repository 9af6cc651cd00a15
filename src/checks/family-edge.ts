import type { CheckSpec } from './spec.js';

export const familyEdgeChecks: CheckSpec[] = [];
