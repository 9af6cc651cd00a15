/**
 * bn-conformance: the public API. The contract types, the profiles, our three kernels
 * (reference, float32 CPU, gpu.js), the tolerance, and the judge.
 */
export type {
  AccumulationInfo,
  AnyRequest,
  Arr,
  AxesSupport,
  BackwardRequest,
  BackwardResult,
  BatchNormImplementation,
  DType,
  ForwardInferRequest,
  ForwardInferResult,
  ForwardTrainRequest,
  ForwardTrainResult,
  Op,
  Profile,
  ProfileName,
  AnyOp,
  SyncOp,
  SyncShard,
  ForwardTrainSyncRequest,
  ForwardTrainSyncResult,
  BackwardSyncRequest,
  BackwardSyncResult,
} from './contract/contract.js';
export { OPS, SYNC_OPS } from './contract/contract.js';
// the normalization family (0.3.0): its ops, types, groupings, reference, oracle and bounds
export { FAMILY_OPS } from './contract/contract.js';
export type {
  FamilyOp,
  FamilyRequest,
  FamilyResult,
  LayerNormRequest,
  LayerNormBackwardRequest,
  RmsNormRequest,
  RmsNormBackwardRequest,
  GroupNormRequest,
  GroupNormBackwardRequest,
  InstanceNormRequest,
  InstanceNormBackwardRequest,
  NormForwardResult,
  NormBackwardResult,
  RmsNormResult,
  RmsNormBackwardResult,
  NormalizationImplementation,
  NormalizationFamilyOps,
} from './contract/contract.js';
export {
  FAMILY,
  batchGrouping,
  layerGrouping,
  groupGrouping,
  instanceGrouping,
  syncGrouping,
  groupingFor,
  validateFamilyRequest,
  type Grouping,
} from './contract/grouping.js';
export { referenceFamily } from './reference/family.js';
export { oracleFamilyForward, oracleFamilyBackward } from './reference/oracle.js';
export { parameterTolerance, type ParameterFacts, type ParameterBounds } from './judge/tolerance.js';
export { supportedFamilyOps } from './harness/call.js';
export { validateSyncRequest, type SyncLayout, type ShardLayout } from './contract/layout-sync.js';
export { referenceForwardTrainSync, referenceBackwardSync, chanMerge, treeMerge, concatenatedStats, mergedStats } from './reference/sync.js';
export { expectationForSync, checkSync } from './judge/compare.js';
export { callSyncImplementation, validateSyncResult } from './harness/call.js';
export { effectiveEps, emaWeights, PROFILE_NAMES, profiles, resolveProfile, runningVarFactor } from './contract/profiles.js';
export {
  AccumulationError,
  BatchNormInputError,
  BnConformanceError,
  FixtureError,
  InternalError,
  NoMatchError,
  ProfileError,
  SingleValuePerChannelError,
  UnsupportedDTypeError,
  UsageError,
} from './contract/errors.js';
export { layoutOf, validateRequest, type Layout } from './contract/layout.js';
export { createReference, channelStats, type ReferenceOptions } from './reference/reference.js';
export { oracleBackward, oracleForwardInfer, oracleForwardTrain, exactBig, ORACLE_DIGITS } from './reference/oracle.js';
export { createCpuF32, prewarmCpuF32Threads, type CpuEngineName, type CpuF32Implementation, type CpuF32Options, type CpuF32Outputs } from './kernels/cpu-f32/index.js';
export {
  createGpu,
  gpuAvailability,
  GpuFallbackError,
  GpuLimitError,
  GpuUnavailableError,
  type GpuAvailability,
  type GpuMode,
  type GpuOptions,
} from './kernels/gpu/index.js';
export { syncTolerance, allReduceDepth, type SyncFacts } from './judge/tolerance.js';
export { tolerance, reductionDepth, sumErrorFactor, finiteDifferenceStep, finiteDifferenceBound, exactStencil, type ChannelFacts, type ChannelBounds } from './judge/tolerance.js';
export { compareWithReference, expectationFor, checkAgainst, type Comparison, type Expectation, type ElementReport } from './judge/compare.js';
export { ulp, ulpDistanceF32, unitRoundoff } from './numerics/ulp.js';
export { toFloat16Bits, fromFloat16Bits, toBfloat16Bits, fromBfloat16Bits, type HalfDType } from './half.js';
export { validateAccumulation, validateImplementation, describeAccumulation, KNOWN_DTYPES } from './contract/declaration.js';
export { idMatcher, closestIds } from './harness/filters.js';
export { runConformance, planRun, DEFAULT_RUNS, DEFAULT_TIMEOUT_MS, type ConformanceOptions, type ProgressEvent } from './harness/runner.js';
export { formatText, formatJson, formatJunit, formatFailure } from './harness/format.js';
export type { AccumulationRecord, CheckResult, CheckStatus, CheckFailure, ConformanceReport, Counterexample, WorstElement, AxisVariant } from './harness/types.js';
export { REPORT_SCHEMA_VERSION } from './harness/types.js';
export { ALL_CHECK_SPECS, planCases } from './checks/index.js';
export { BUILTINS, createBuiltin } from './harness/builtins.js';
export { loadFixtures, FixtureFileError, type Fixture } from './fixtures/load.js';
export { goldenCases } from './checks/golden.js';
export { createExecImplementation, ExecFault, type ExecImplementation, type ExecOptions, type ExecFaultName } from './harness/exec.js';
export { createIsolatedImplementation, type IsolatedImplementation, type IsolateOptions } from './harness/isolate.js';
export { createBrowserImplementation, type BrowserImplementation, type BrowserOptions, type BrowserEnvironment } from './harness/browser/door.js';
export { encodeMessage, decodeMessage } from './harness/browser/wire.js';
export { mergeReports, readReportFile } from './harness/merge.js';
export {
  TOPICS,
  explain,
  findTopic,
  topicList,
  renderPlot,
  plotIndex,
  formatHtml,
  sampleErrorRatios,
  errorRatioPlot,
  createF32Kernel,
  linePlot,
  histogram,
  type Topic,
  type HtmlOptions,
  type ErrorRatioSample,
  type PlotSpec,
  type HistogramSpec,
  type Series,
} from './teach/index.js';
