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
  constructor(message: string, code = 'BN_USAGE') {
    super(code, message);
  }
}

/** An implementation's `accumulation` declaration that is not a valid AccumulationInfo (or map of them). */
export class AccumulationError extends UsageError {
  constructor(message: string) {
    super(message, 'BN_ACCUMULATION');
  }
}

/** A profile that is neither a built-in name nor a complete, valid Profile object. */
export class ProfileError extends UsageError {
  constructor(message: string) {
    super(message, 'BN_PROFILE');
  }
}

/** An --only / --skip pattern that selects no check: a typo would otherwise pass vacuously. */
export class NoMatchError extends UsageError {
  constructor(message: string) {
    super(message, 'BN_NO_MATCH');
  }
}

/**
 * A bug in bn-conformance itself, never the implementation's fault: e.g. a check that calls an
 * op it does not declare (its `needs` would then not make it "not supported" when the op is
 * missing). Reported as the check's failure, so it can never pass unnoticed.
 */
export class InternalError extends BnConformanceError {
  constructor(message: string) {
    super('BN_INTERNAL', `internal error (a bug in bn-conformance, please report it): ${message}`);
  }
}

/** A fixture file that fails its checksum or schema. */
export class FixtureError extends BnConformanceError {
  constructor(message: string) {
    super('BN_FIXTURE', message);
  }
}
