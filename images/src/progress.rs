//! One line per step on stderr, so a first run that downloads and builds
//! for a while shows what it is doing.

use std::time::Instant;

pub struct Step {
    what: String,
    start: Instant,
}

/// Announces a step; its completion is printed when the step is dropped.
pub fn step(what: impl Into<String>) -> Step {
    let what = what.into();
    eprintln!("vigil images: {what} ...");
    Step {
        what,
        start: Instant::now(),
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        eprintln!(
            "vigil images: {} done ({:.1} s)",
            self.what,
            self.start.elapsed().as_secs_f64()
        );
    }
}
