//! Dense bitsets filled by per-row predicates (on several threads for large engines) and
//! turned into Roaring bitmaps.

use roaring::RoaringBitmap;

/// A bitmap of the rows `0..n` where `pred` holds, computed on `threads` threads.
pub(super) fn dense(n: u32, threads: usize, pred: impl Fn(usize) -> bool + Sync) -> RoaringBitmap {
    let nn = n as usize;
    dense_bytes(n, threads, 1, |b0, outs| {
        let Some(out) = outs.first_mut() else { return };
        for (byte, x) in out.iter_mut().enumerate() {
            let base = (b0 + byte) * 8;
            if base + 8 <= nn {
                let mut v = 0u8;
                for j in 0..8 {
                    v |= u8::from(pred(base + j)) << j;
                }
                *x = v;
            } else {
                for r in base..nn {
                    *x |= u8::from(pred(r)) << (r - base);
                }
            }
        }
    })
    .pop()
    .unwrap_or_default()
}

/// Bitmaps of the rows `0..n` for `k` predicates computed together by `f(row, results)`.
pub(super) fn dense_k(
    n: u32,
    threads: usize,
    k: usize,
    f: impl Fn(usize, &mut [bool]) + Sync,
) -> Vec<RoaringBitmap> {
    let nn = n as usize;
    dense_bytes(n, threads, k, |b0, outs| {
        let mut res = vec![false; k];
        let len = outs.first().map_or(0, |o| o.len());
        for byte in 0..len {
            let base = (b0 + byte) * 8;
            for r in base..(base + 8).min(nn) {
                f(r, &mut res);
                for (o, &b) in outs.iter_mut().zip(&res) {
                    o[byte] |= u8::from(b) << (r - base);
                }
            }
        }
    })
}

/// Runs `fill(first_byte, outputs)` on `threads` threads, each owning a byte range of all `k`
/// bitsets over rows `0..n`, and converts the bitsets to Roaring bitmaps.
pub(super) fn dense_bytes(
    n: u32,
    threads: usize,
    k: usize,
    fill: impl Fn(usize, &mut [&mut [u8]]) + Sync,
) -> Vec<RoaringBitmap> {
    let n = n as usize;
    let nbytes = n.div_ceil(8);
    let mut bufs: Vec<Vec<u8>> = (0..k).map(|_| vec![0u8; nbytes]).collect();
    let parts = if threads <= 1 || n < 100_000 { 1 } else { threads };
    let chunk = nbytes.div_ceil(parts).max(1);
    let mut slices: Vec<Vec<&mut [u8]>> = (0..parts).map(|_| Vec::with_capacity(k)).collect();
    for b in &mut bufs {
        for (p, c) in b.chunks_mut(chunk).enumerate() {
            slices[p].push(c);
        }
    }
    if parts == 1 {
        if let Some(s) = slices.first_mut() {
            fill(0, s);
        }
    } else {
        std::thread::scope(|sc| {
            for (p, mut s) in slices.into_iter().enumerate() {
                let fill = &fill;
                sc.spawn(move || fill(p * chunk, &mut s));
            }
        });
    }
    bufs.iter().map(|b| RoaringBitmap::from_lsb0_bytes(0, b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_bitmaps_match_the_predicate_across_thread_splits() {
        for (n, threads) in [(0u32, 2usize), (7, 1), (100_003, 2), (250_001, 3)] {
            let pred = |r: usize| r % 7 == 3 || r.is_multiple_of(64);
            let got = dense(n, threads, pred);
            let want: RoaringBitmap = (0..n).filter(|&r| pred(r as usize)).collect();
            assert_eq!(got, want, "n={n} threads={threads}");
            let ks = dense_k(n, threads, 2, |r, out| {
                out[0] = pred(r);
                out[1] = !pred(r);
            });
            assert_eq!(ks[0], want);
            assert_eq!(ks[1].len(), u64::from(n) - want.len());
        }
    }
}
