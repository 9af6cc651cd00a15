/**
 * A check as a family file declares it; src/checks/index.ts expands each into one case per
 * dtype and axis variant with the stable ID bn:<family>:<name>:dtype=…;axis=… (the normalization
 * family's ops: <prefix>:<family>:<name>:…, prefix ln, rms, gn or in).
 */
import type { AnyOp, DType } from '../contract/contract.js';
import type { CheckContext, CheckDef } from '../harness/check.js';
import type { AxisVariant } from '../harness/types.js';

export interface CheckSpec {
  family: string;
  name: string;
  title: string;
  /** Ops the check requires; any absent one makes it "not supported". */
  needs: AnyOp[];
  /** Ops it also calls when the implementation has them; ctx.call refuses any other op (an internal error). */
  uses?: AnyOp[];
  /** 'each': one case per supported axis variant; 'one': only the first supported variant. */
  axes?: 'each' | 'one';
  /** Restrict to dtypes (default: every dtype the implementation declares). */
  dtypes?: DType[];
  skip?(ctx: CheckContext): string | undefined;
  /** ID prefix (0.3.0): 'bn' when absent; the normalization family's targets: 'ln', 'rms', 'gn', 'in'. */
  prefix?: string;
  /** The axis variants the check has (default every one): groupNorm / instanceNorm have no 'other'. */
  variants?: AxisVariant[];
  /**
   * Planned only for an implementation that defines one of these ops (the family's checks: a
   * BatchNorm-only kernel does not list them; one with layerNorm lists every ln check, and those
   * whose needs it lacks are not supported).
   */
  plannedWith?: AnyOp[];
  run: CheckDef['run'];
}
