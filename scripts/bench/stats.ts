// Order statistics for the benchmarks: percentiles of samples and of histograms, medians of runs.

/** The p-th percentile (0..100) by the nearest-rank method; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** The p-th percentile of a histogram given as [value, count] pairs sorted by value. */
export function histogramPercentile(histogram: ReadonlyArray<readonly [number, number]>, p: number, overflowValue = Number.POSITIVE_INFINITY, overflow = 0): number {
  const total = histogram.reduce((sum, [, count]) => sum + count, 0) + overflow;
  if (total === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (const [value, count] of histogram) {
    seen += count;
    if (seen >= rank) return value;
  }
  return overflowValue;
}

/** p50, p99 and max of samples, rounded to `decimals`. */
export function summarize(samples: readonly number[], decimals = 3): { n: number; p50: number; p99: number; max: number } {
  return {
    n: samples.length,
    p50: round(percentile(samples, 50), decimals),
    p99: round(percentile(samples, 99), decimals),
    max: round(samples.length === 0 ? Number.NaN : Math.max(...samples), decimals),
  };
}

export function round(value: number, decimals = 3): number {
  if (!Number.isFinite(value)) return value;
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}
