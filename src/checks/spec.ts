/**
 * A check as a family file declares it; src/checks/index.ts expands each into one case per
 * dtype and axis variant with the stable ID bn:<family>:<name>:dtype=…;axis=….
 */
import type { AnyOp, DType } from '../contract/contract.js';
import type { CheckContext, CheckDef } from '../harness/check.js';

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
  run: CheckDef['run'];
}
