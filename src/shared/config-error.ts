/** A configuration problem, already phrased as the one line the process prints before it exits. */
export class ConfigError extends Error {
  override name = "ConfigError";
}
