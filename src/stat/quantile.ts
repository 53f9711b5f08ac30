/**
 * The φ-quantile of a classic histogram's buckets, as PromQL's histogram_quantile computes it
 * (promql/quantile.go, bucketQuantile), so `watchtower stat` and a Prometheus dashboard agree on
 * the same data: linear interpolation within the bucket the rank falls in, the lowest bucket
 * starting at 0 (unless its upper bound is 0 or less), and a rank in the +Inf bucket answered
 * with the highest finite bound. No library does this on its own.
 */

export interface Bucket {
  /** The `le` label as a number (+Inf for the last bucket). */
  upperBound: number;
  /** Observations at or below upperBound (cumulative, as exposed), or their rate. */
  count: number;
}

/** Merges buckets with the same upper bound (sorted input). */
function coalesce(buckets: Bucket[]): Bucket[] {
  const out: Bucket[] = [];
  for (const b of buckets) {
    const last = out[out.length - 1];
    if (last !== undefined && last.upperBound === b.upperBound) last.count += b.count;
    else out.push({ ...b });
  }
  return out;
}

/** Counts that differ by a float rounding error from the bucket below take its count. */
function correctPrecisionErrors(buckets: Bucket[], tolerance = 1e-12): void {
  let prev = buckets[0].count;
  for (let i = 1; i < buckets.length; i++) {
    const curr = buckets[i].count;
    const delta = Math.abs(curr - prev);
    if (delta === 0) continue;
    if (delta / curr <= tolerance) buckets[i].count = prev;
    else prev = curr;
  }
}

/** Removes any decrease between successive buckets (the "envelope"), so the rank search is sound. */
function ensureMonotonic(buckets: Bucket[]): void {
  let max = buckets[0].count;
  for (let i = 1; i < buckets.length; i++) {
    if (buckets[i].count > max) max = buckets[i].count;
    else if (buckets[i].count < max) buckets[i].count = max;
  }
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of `input`; NaN when there are no observations, fewer than two
 * buckets, or no +Inf bucket; -Inf for q < 0 and +Inf for q > 1, as PromQL answers.
 */
export function bucketQuantile(q: number, input: readonly Bucket[]): number {
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  if (input.length === 0) return NaN;
  const sorted = [...input].sort((a, b) => a.upperBound - b.upperBound);
  if (sorted[sorted.length - 1].upperBound !== Infinity) return NaN;
  const buckets = coalesce(sorted);
  correctPrecisionErrors(buckets);
  ensureMonotonic(buckets);
  if (buckets.length < 2) return NaN;
  const observations = buckets[buckets.length - 1].count;
  if (observations === 0) return NaN;
  let rank = q * observations;
  // The first bucket (the +Inf one left out) whose count reaches the rank; buckets.length - 1 if none.
  let b = buckets.length - 1;
  for (let i = 0; i < buckets.length - 1; i++) {
    if (buckets[i].count >= rank) {
      b = i;
      break;
    }
  }
  if (b === buckets.length - 1) return buckets[buckets.length - 2].upperBound;
  if (b === 0 && buckets[0].upperBound <= 0) return buckets[0].upperBound;
  let bucketStart = 0;
  const bucketEnd = buckets[b].upperBound;
  let count = buckets[b].count;
  if (b > 0) {
    bucketStart = buckets[b - 1].upperBound;
    count -= buckets[b - 1].count;
    rank -= buckets[b - 1].count;
  }
  return bucketStart + (bucketEnd - bucketStart) * (rank / count);
}
