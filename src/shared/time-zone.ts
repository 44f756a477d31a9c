/** Whether Intl knows this IANA time zone (e.g. "America/New_York"); config, and hints in FHIR data, are checked with it. */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
