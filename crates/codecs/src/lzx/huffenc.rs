//! Length-limited canonical Huffman codes for the encoder.
//!
//! Lengths come from an ordinary Huffman tree (built with the two-queue
//! method over symbols sorted by frequency); if the tree is deeper than the
//! limit, the length histogram is repaired by moving the overflowing leaves
//! to the limit and then lengthening the deepest shorter codes until the
//! Kraft sum is exactly one again, giving the longest codes to the rarest
//! symbols. LZX decoders only accept complete codes, so a code with a single
//! used symbol gets a second, unused one-bit codeword.

pub struct HuffmanBuilder {
    /// (frequency, symbol) of the used symbols.
    leaves: Vec<(u32, u16)>,
    /// Tree nodes: weight and parent.
    weight: Vec<u64>,
    parent: Vec<u32>,
}

impl HuffmanBuilder {
    pub fn new() -> Self {
        Self {
            leaves: Vec::new(),
            weight: Vec::new(),
            parent: Vec::new(),
        }
    }

    /// Fills `lens` (one per symbol, same length as `freqs`) with codeword
    /// lengths of at most `limit` bits, and `codes` with the canonical codes.
    pub fn build(&mut self, freqs: &[u32], limit: u32, lens: &mut [u8], codes: &mut [u16]) {
        debug_assert_eq!(freqs.len(), lens.len());
        lens.fill(0);
        self.leaves.clear();
        for (s, &f) in freqs.iter().enumerate() {
            if f != 0 {
                self.leaves.push((f, s as u16));
            }
        }
        match self.leaves.len() {
            0 => {}
            1 => {
                // Complete the code with a dummy second symbol.
                let s = self.leaves[0].1 as usize;
                lens[s] = 1;
                lens[if s == 0 { 1 } else { 0 }] = 1;
            }
            n => {
                self.leaves.sort_unstable();
                self.tree_lengths(n, limit, lens);
            }
        }
        canonical_codes(lens, codes);
    }

    fn tree_lengths(&mut self, n: usize, limit: u32, lens: &mut [u8]) {
        // Nodes 0..n are leaves (ascending weight), n..2n-1 internal nodes
        // created in ascending weight order, so two queues suffice.
        self.weight.clear();
        self.parent.clear();
        self.weight
            .extend(self.leaves.iter().map(|&(f, _)| u64::from(f)));
        self.parent.resize(2 * n - 1, 0);
        let (mut li, mut ii) = (0usize, n);
        for _ in 0..n - 1 {
            let mut pick = |w: &Vec<u64>| -> usize {
                let next_internal = w.len();
                if li < n && (ii >= next_internal || w[li] <= w[ii]) {
                    li += 1;
                    li - 1
                } else {
                    ii += 1;
                    ii - 1
                }
            };
            let a = pick(&self.weight);
            let b = pick(&self.weight);
            let id = self.weight.len();
            self.weight.push(self.weight[a] + self.weight[b]);
            self.parent[a] = id as u32;
            self.parent[b] = id as u32;
        }
        // Depths from the root down (parents have larger indices).
        let root = 2 * n - 2;
        let mut depth = vec![0u32; 2 * n - 1];
        for i in (0..root).rev() {
            depth[i] = depth[self.parent[i] as usize] + 1;
        }
        let mut count = [0u32; 33];
        for &d in &depth[..n] {
            count[d.min(32) as usize] += 1;
        }
        let max = (1..=32).rev().find(|&l| count[l] != 0).unwrap_or(1);
        if max as u32 > limit {
            let limit = limit as usize;
            for l in limit + 1..=32 {
                count[limit] += count[l];
                count[l] = 0;
            }
            let mut kraft: u64 = (1..=limit)
                .map(|l| u64::from(count[l]) << (limit - l))
                .sum();
            // Each step moves one leaf off the limit level and pushes the
            // deepest shorter leaf one level down next to it: the leaf count
            // is unchanged and the Kraft sum drops by exactly 2^-limit.
            // There are at most 656 symbols, far below 2^limit, so a
            // shorter leaf exists while the sum is too large.
            while kraft > 1 << limit {
                count[limit] -= 1;
                if let Some(l) = (1..limit).rev().find(|&l| count[l] != 0) {
                    count[l] -= 1;
                    count[l + 1] += 2;
                }
                kraft -= 1;
            }
        }
        // Longest codes to the rarest symbols: leaves are sorted ascending.
        let mut l = 32usize;
        let mut idx = 0usize;
        while idx < n {
            while count[l] == 0 {
                l -= 1;
            }
            count[l] -= 1;
            lens[self.leaves[idx].1 as usize] = l as u8;
            idx += 1;
        }
    }
}

/// Canonical codewords (MSB-first, right-aligned) for `lens`.
pub fn canonical_codes(lens: &[u8], codes: &mut [u16]) {
    let mut count = [0u32; 17];
    for &l in lens {
        count[l as usize] += 1;
    }
    count[0] = 0;
    let mut next = [0u32; 17];
    let mut code = 0u32;
    for l in 1..=16 {
        code = (code + count[l - 1]) << 1;
        next[l] = code;
    }
    for (s, &l) in lens.iter().enumerate() {
        if l != 0 {
            codes[s] = next[l as usize] as u16;
            next[l as usize] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kraft(lens: &[u8]) -> f64 {
        lens.iter()
            .filter(|&&l| l > 0)
            .map(|&l| 0.5f64.powi(i32::from(l)))
            .sum()
    }

    #[test]
    fn single_and_empty_codes_are_complete_or_empty() {
        let mut h = HuffmanBuilder::new();
        let (mut lens, mut codes) = ([0u8; 8], [0u16; 8]);
        h.build(&[0; 8], 7, &mut lens, &mut codes);
        assert_eq!(lens, [0; 8]);
        h.build(&[0, 0, 5, 0, 0, 0, 0, 0], 7, &mut lens, &mut codes);
        assert_eq!(kraft(&lens), 1.0);
        assert_eq!(lens[2], 1);
    }

    #[test]
    fn fibonacci_frequencies_are_limited() {
        // Fibonacci weights make the deepest possible Huffman tree.
        let mut f = vec![1u32, 1];
        while f.len() < 30 {
            let k = f.len();
            f.push(f[k - 1] + f[k - 2]);
        }
        let mut h = HuffmanBuilder::new();
        let (mut lens, mut codes) = (vec![0u8; 30], vec![0u16; 30]);
        h.build(&f, 16, &mut lens, &mut codes);
        assert!(lens.iter().all(|&l| (1..=16).contains(&l)));
        assert_eq!(kraft(&lens), 1.0);
        // Rarer symbols never get shorter codes.
        for w in lens.windows(2) {
            assert!(w[0] >= w[1]);
        }
        h.build(&f[..20], 7, &mut lens[..20], &mut codes[..20]);
        assert!(lens[..20].iter().all(|&l| (1..=7).contains(&l)));
        assert_eq!(kraft(&lens[..20]), 1.0);
    }

    proptest! {
        #[test]
        fn codes_are_complete_limited_and_prefix_free(
            freqs in proptest::collection::vec(prop_oneof![Just(0u32), 1u32..5, 1u32..100000], 2..300),
            limit in 9u32..=16,
        ) {
            let n = freqs.len();
            let mut h = HuffmanBuilder::new();
            let (mut lens, mut codes) = (vec![0u8; n], vec![0u16; n]);
            h.build(&freqs, limit, &mut lens, &mut codes);
            let used = freqs.iter().filter(|&&f| f > 0).count();
            if used == 0 {
                prop_assert!(lens.iter().all(|&l| l == 0));
            } else {
                prop_assert_eq!(kraft(&lens), 1.0);
                for (s, &f) in freqs.iter().enumerate() {
                    prop_assert!(u32::from(lens[s]) <= limit);
                    if f > 0 {
                        prop_assert!(lens[s] > 0);
                    }
                }
                // The decoder's table accepts and inverts the code.
                let mut t = super::super::huffdec::DecodeTable::<8>::new();
                prop_assert!(t.build(&lens).is_ok());
                for s in 0..n {
                    if lens[s] > 0 {
                        let bits = u64::from(codes[s]) << (64 - lens[s]);
                        prop_assert_eq!(t.decode(bits), (s as u32, u32::from(lens[s])));
                    }
                }
            }
        }
    }
}
