/**
 * Quiet hours: messages go out only inside a daily window of local wall-clock time in the
 * patient's (or clinic's) IANA time zone. The window is [start, end): "08:00"–"21:00" allows
 * 08:00:00 up to 20:59:59.999. A window whose start is after its end crosses midnight
 * ("22:00"–"06:00" allows the night), which the schema in delivery.config.ts accepts.
 *
 * Local times are resolved with Intl, so DST transitions follow the tz database: a window start
 * that falls in a spring-forward gap opens at the transition, and one that occurs twice in an
 * autumn fold opens at its first occurrence not earlier than `at`.
 */
export interface SendWindow {
  /** "HH:MM", 24-hour. */
  readonly start: string;
  /** "HH:MM", 24-hour, exclusive. */
  readonly end: string;
}

const minuteMs = 60_000;
const dayMs = 86_400_000;

interface WallClock {
  /** The wall-clock reading expressed as if it were UTC, in ms: comparable across days. */
  readonly wallMs: number;
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

function minutesOfDay(hhmm: string): number {
  const match = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(hhmm);
  if (match === null) throw new RangeError("quiet-hours window times must be HH:MM");
  return Number(match[1]) * 60 + Number(match[2]);
}

function wallClockReader(timeZone: string): (instantMs: number) => WallClock {
  // Throws RangeError for an unknown zone, which is what callers should see.
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    second: "numeric",
  });
  return (instantMs) => {
    const parts: Record<string, number> = {};
    for (const part of format.formatToParts(instantMs)) {
      if (part.type !== "literal") parts[part.type] = Number(part.value);
    }
    const year = parts.year ?? 0;
    const month = parts.month ?? 1;
    const day = parts.day ?? 1;
    const wholeSeconds = Date.UTC(year, month - 1, day, parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0);
    // Intl drops milliseconds; zone offsets are whole seconds, so they carry over unchanged.
    const wallMs = wholeSeconds + (((instantMs % 1000) + 1000) % 1000);
    return { wallMs, year, month, day };
  };
}

/**
 * Instants whose wall-clock reading is exactly `wallMs`, earliest first: one normally, two in
 * a fold, none in a gap. For a gap it returns the transition instant, the first moment whose
 * wall clock is past `wallMs`.
 */
function instantsForWallTime(wallMs: number, read: (instantMs: number) => WallClock): number[] {
  // Offsets a day either side bracket any single transition near this wall time.
  const offsetBefore = read(wallMs - dayMs).wallMs - (wallMs - dayMs);
  const offsetAfter = read(wallMs + dayMs).wallMs - (wallMs + dayMs);
  const candidates = [...new Set([wallMs - offsetBefore, wallMs - offsetAfter])].sort((a, b) => a - b);
  const exact = candidates.filter((instant) => read(instant).wallMs === wallMs);
  if (exact.length > 0) return exact;

  // Gap: the wall clock jumps over wallMs between the two candidates. Find the jump to the minute.
  let low = Math.min(...candidates);
  let high = Math.max(...candidates);
  while (high - low > minuteMs) {
    const mid = low + Math.floor((high - low) / 2 / minuteMs) * minuteMs;
    if (read(mid).wallMs >= wallMs) high = mid;
    else low = mid;
  }
  return [high];
}

/** `at` when it is inside the window in `timeZone`, otherwise the next moment the window opens. */
export function nextAllowedTime(at: Date, window: SendWindow, timeZone: string): Date {
  const start = minutesOfDay(window.start);
  const end = minutesOfDay(window.end);
  if (start === end) throw new RangeError("quiet-hours window must not be empty");

  const read = wallClockReader(timeZone);
  const atMs = at.getTime();
  const now = read(atMs);
  const localDayStart = Date.UTC(now.year, now.month - 1, now.day);
  const sinceMidnight = now.wallMs - localDayStart;
  const startMs = start * minuteMs;
  const endMs = end * minuteMs;

  const isInside = start < end ? sinceMidnight >= startMs && sinceMidnight < endMs : sinceMidnight >= startMs || sinceMidnight < endMs;
  if (isInside) return new Date(atMs);

  // Outside the window the next opening is today's start if it is still ahead, else tomorrow's.
  // That holds for windows crossing midnight too: outside them we are always before today's start.
  for (const dayOffset of [0, 1, 2]) {
    const openingWall = localDayStart + dayOffset * dayMs + startMs;
    if (openingWall < now.wallMs) continue;
    const opening = instantsForWallTime(openingWall, read).find((instant) => instant >= atMs);
    if (opening !== undefined) return new Date(opening);
  }
  // Unreachable for real zones: some opening within two days is always ahead of `at`.
  throw new RangeError("no quiet-hours opening found");
}
