//! Round-by-round speeds of tasq's decoder and wimlib's, printed as a
//! Markdown table with the best round of each and the medians.

/// Speeds (MB/s) of each round, tasq and wimlib.
#[derive(Default)]
pub struct Rounds {
    ours: Vec<f64>,
    theirs: Vec<f64>,
    ratio: Vec<f64>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl Rounds {
    /// Prints the table header.
    pub fn new() -> Self {
        println!("| round | tasq MB/s | wimlib MB/s | tasq/wimlib speed |");
        println!("|---|---|---|---|");
        Self::default()
    }

    /// Records and prints one round's speeds.
    pub fn push(&mut self, ours: f64, theirs: f64) {
        println!(
            "| {} | {ours:.1} | {theirs:.1} | {:.3} |",
            self.ours.len(),
            ours / theirs
        );
        self.ours.push(ours);
        self.theirs.push(theirs);
        self.ratio.push(ours / theirs);
    }

    /// Prints the best round of each decoder (the least disturbed by other
    /// jobs on a shared machine) and the medians.
    pub fn finish(mut self) {
        if self.ours.is_empty() {
            return;
        }
        let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        let (bo, bt) = (best(&self.ours), best(&self.theirs));
        println!("| best | {bo:.1} | {bt:.1} | {:.3} |", bo / bt);
        println!(
            "| median | {:.1} | {:.1} | {:.3} |",
            median(&mut self.ours),
            median(&mut self.theirs),
            median(&mut self.ratio)
        );
    }
}
