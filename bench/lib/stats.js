/** @module bench/lib/stats — summaries of samples: median, min, max, nearest-rank percentiles. */

/** Nearest-rank percentile of an ascending array (`p` in 0..100). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** The middle value of an ascending array; the mean of the two middle ones for an even count. */
export function median(sorted) {
  if (sorted.length === 0) return Number.NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** `{ n, median, min, max, mean }` of a list of numbers (NaN fields when it is empty). */
export function summarize(values) {
  const sorted = Float64Array.from(values).sort();
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    n: sorted.length,
    median: median(sorted),
    min: sorted.length ? sorted[0] : Number.NaN,
    max: sorted.length ? sorted[sorted.length - 1] : Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
  };
}
