/**
 * Named errors. Every bad input gets one of these, with a message that says what was wrong and
 * what was expected; never a crash deep inside a loop or a silent wrong answer.
 */

export class BnConformanceError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A request that breaks the contract (shape, axis, lengths, dtype, eps). */
export class BatchNormInputError extends BnConformanceError {
  constructor(message: string) {
    super('BN_INPUT', message);
  }
}

/** Training with one value per channel under a profile whose rule is 'error' (PyTorch, paper). */
export class SingleValuePerChannelError extends BnConformanceError {
  constructor(m: number, shape: readonly number[], axis: number) {
    super(
      'BN_SINGLE_VALUE',
      `Expected more than 1 value per channel when training, got m = ${m} (shape [${shape.join(', ')}], axis ${axis})`,
    );
  }
}

/** A dtype the implementation does not declare. */
export class UnsupportedDTypeError extends BnConformanceError {
  constructor(dtype: string, supported: readonly string[]) {
    super('BN_DTYPE', `dtype ${dtype} is not supported (supported: ${supported.join(', ')})`);
  }
}

/** Wrong command-line or API usage: unknown profile, bad option value, unreadable file. */
export class UsageError extends BnConformanceError {
  constructor(message: string) {
    super('BN_USAGE', message);
  }
}

/** A fixture file that fails its checksum or schema. */
export class FixtureError extends BnConformanceError {
  constructor(message: string) {
    super('BN_FIXTURE', message);
  }
}
