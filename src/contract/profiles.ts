/**
 * The built-in profiles: the conventions that legitimately differ between frameworks.
 * Every field is sourced; the long version is docs/framework-semantics.md.
 */
import type { Profile, ProfileName } from './contract.js';
import { ProfileError } from './errors.js';

export const profiles = {
  /**
   * Keras 3 (all backends), tf-keras on its non-fused path (2D/3D inputs), TF.js layers.
   * keras/src/layers/normalization/batch_normalization.py: momentum=0.99, epsilon=1e-3;
   * moving = moving*momentum + batch*(1-momentum) with the biased variance from ops.moments.
   * m = 1: variance 0, y = beta, no error (Keras 3.15.1, observed).
   */
  keras: {
    name: 'keras',
    momentum: 'decay',
    runningVar: 'biased',
    defaultEps: 1e-3,
    defaultMomentum: 0.99,
    singleValue: 'allowed',
  },
  /**
   * tf.compat.v1.nn.fused_batch_norm / FusedBatchNormV3 (tf-keras 2.x on 4D/5D inputs).
   * tensorflow/core/kernels/fused_batch_norm_op.cc: running = (1-f)*old + f*adjust*batch with
   * exponential_avg_factor f = 1 - momentum and adjust = m / max(m-1, 1) (Bessel, guarded);
   * the Python wrapper's epsilon=0.001; TF 2.21 no longer clamps eps (the 1.001e-5 floor is gone).
   * m = 1 on CPU: adjust = 1, variance 0, y = offset (observed).
   */
  'tensorflow-fused': {
    name: 'tensorflow-fused',
    momentum: 'decay',
    runningVar: 'unbiased',
    defaultEps: 1e-3,
    defaultMomentum: 0.99,
    singleValue: 'allowed',
  },
  /**
   * torch.nn.BatchNorm1d/2d/3d and F.batch_norm (torch 2.13).
   * aten/src/ATen/native/Normalization.cpp, batch_norm_cpu_update_stats_template:
   * running = (1-momentum)*running + momentum*batch, running_var from var_sum/(n-1) (unbiased);
   * torch/nn/modules/batchnorm.py: eps=1e-5, momentum=0.1.
   * m = 1: ValueError "Expected more than 1 value per channel when training" (_verify_batch_size).
   */
  pytorch: {
    name: 'pytorch',
    momentum: 'update-fraction',
    runningVar: 'unbiased',
    defaultEps: 1e-5,
    defaultMomentum: 0.1,
    singleValue: 'error',
  },
  /**
   * ONNX BatchNormalization opset 14/15 with training_mode = 1 (onnx/defs/nn/defs.cc):
   * running_var = input_var*momentum + current_var*(1-momentum), current_var the population
   * variance ("does not use N - 1"); epsilon=1e-5, momentum=0.9.
   * m = 1: variance 0, Y = B, running_var = 0.9*input_var (onnx.reference, observed).
   */
  onnx: {
    name: 'onnx',
    momentum: 'decay',
    runningVar: 'biased',
    defaultEps: 1e-5,
    defaultMomentum: 0.9,
    singleValue: 'allowed',
  },
  /**
   * Ioffe & Szegedy 2015 (arXiv:1502.03167), Algorithm 2 with a moving average in place of the
   * plain average over batches: Var[x] <- m/(m-1) * E_B[sigma_B^2] (unbiased). The paper gives no
   * momentum or eps default; we take Keras's 0.99 and 1e-3. m = 1 is undefined (m - 1 = 0): error.
   */
  paper: {
    name: 'paper',
    momentum: 'decay',
    runningVar: 'unbiased',
    defaultEps: 1e-3,
    defaultMomentum: 0.99,
    singleValue: 'error',
  },
} as const satisfies Record<Exclude<ProfileName, 'tfjs'>, Profile>;

/** `tfjs` is an alias of `keras`: tfjs-layers normalization.ts has the same defaults and update. */
export const PROFILE_ALIASES: Record<string, keyof typeof profiles> = { tfjs: 'keras' };

export const PROFILE_NAMES = [...Object.keys(profiles), ...Object.keys(PROFILE_ALIASES)] as ProfileName[];

/** Resolve a profile name or validate a custom profile object. Throws ProfileError (a UsageError) when invalid. */
export function resolveProfile(p: ProfileName | Profile | string | undefined, fallback: ProfileName = 'keras'): Profile {
  if (p === undefined) return profiles[PROFILE_ALIASES[fallback] ?? (fallback as keyof typeof profiles)];
  if (typeof p === 'string') {
    const key = (PROFILE_ALIASES[p] ?? p) as keyof typeof profiles;
    const found = profiles[key];
    if (!Object.hasOwn(profiles, key) || !found) throw new ProfileError(`unknown profile "${p}"; built in: ${PROFILE_NAMES.join(', ')}`);
    return found;
  }
  validateProfile(p);
  return p;
}

/** Every field a Profile may have; anything else is a typo that would otherwise be ignored. */
const PROFILE_FIELDS = new Set(['name', 'momentum', 'runningVar', 'defaultEps', 'defaultMomentum', 'minEps', 'singleValue']);

function validateProfile(p: Profile): void {
  const problems: string[] = [];
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new ProfileError(`a profile must be a built-in name (${PROFILE_NAMES.join(', ')}) or a Profile object, got ${p === null ? 'null' : Array.isArray(p) ? 'an array' : typeof p}`);
  const unknown = Object.keys(p).filter((k) => !PROFILE_FIELDS.has(k));
  if (unknown.length) problems.push(`unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')} (a Profile has ${[...PROFILE_FIELDS].join(', ')})`);
  if (typeof p.name !== 'string' || !p.name) problems.push('name must be a non-empty string');
  if (p.momentum !== 'decay' && p.momentum !== 'update-fraction') problems.push(`momentum must be 'decay' or 'update-fraction'`);
  if (p.runningVar !== 'biased' && p.runningVar !== 'unbiased') problems.push(`runningVar must be 'biased' or 'unbiased'`);
  if (!(Number.isFinite(p.defaultEps) && p.defaultEps >= 0)) problems.push('defaultEps must be a finite number >= 0');
  if (!Number.isFinite(p.defaultMomentum)) problems.push('defaultMomentum must be finite');
  if (p.minEps !== undefined && !(Number.isFinite(p.minEps) && p.minEps >= 0)) problems.push('minEps must be a finite number >= 0');
  if (p.singleValue !== 'error' && p.singleValue !== 'allowed') problems.push(`singleValue must be 'error' or 'allowed'`);
  if (problems.length) throw new ProfileError(`invalid profile ${JSON.stringify(p.name)}: ${problems.join('; ')}`);
}

/** The eps a profile actually uses (raised to minEps where the profile has a floor). */
export function effectiveEps(profile: Profile, eps: number): number {
  return profile.minEps !== undefined ? Math.max(eps, profile.minEps) : eps;
}

/** Weights (a, b) of running' = a * running + b * batch, in the profile's momentum convention. */
export function emaWeights(profile: Profile, momentum: number): { keep: number; take: number } {
  return profile.momentum === 'decay' ? { keep: momentum, take: 1 - momentum } : { keep: 1 - momentum, take: momentum };
}

/** Factor applied to the biased batch variance before it enters the running average. */
export function runningVarFactor(profile: Profile, m: number): number {
  return profile.runningVar === 'unbiased' ? m / Math.max(m - 1, 1) : 1;
}
