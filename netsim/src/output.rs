//! What a command printed, in order, with its exit code.

/// Output chunks keep stdout and stderr interleaved as a terminal would show them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    pub chunks: Vec<(Stream, String)>,
    pub exit: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Output {
    pub fn out(&mut self, s: &str) {
        if !s.is_empty() {
            self.chunks.push((Stream::Stdout, s.to_owned()));
        }
    }

    pub fn err(&mut self, s: &str) {
        if !s.is_empty() {
            self.chunks.push((Stream::Stderr, s.to_owned()));
        }
    }

    pub fn stdout(&self) -> String {
        self.chunks
            .iter()
            .filter(|c| c.0 == Stream::Stdout)
            .map(|c| c.1.as_str())
            .collect()
    }

    /// Both streams, as the terminal shows them.
    pub fn combined(&self) -> String {
        self.chunks.iter().map(|c| c.1.as_str()).collect()
    }
}
