import type { CheckSpec } from './spec.js';

export const familyIdentityChecks: CheckSpec[] = [];
