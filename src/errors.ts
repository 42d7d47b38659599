/**
 * Errors shared by every layer. A `UsageError` is bad input from the caller (an option, a preset, a
 * missing file), as opposed to a failure: the CLI prints its message alone and exits 2.
 */
export class UsageError extends Error {
  override name = 'UsageError';
}
