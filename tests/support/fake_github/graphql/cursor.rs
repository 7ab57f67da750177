//! Connection cursors and the page a `first`/`last`/`after`/`before` window selects.
//!
//! A cursor is opaque to clients but encodes the item's offset in its connection, as
//! GitHub's do: base64 of `cursor:v2:` + the offset. So `after: c` continues right after
//! the item `c` names, and `first: 100` after the 100th item holds what REST's
//! `page=2&per_page=100` holds.

use std::ops::Range;

const PREFIX: &str = "cursor:v2:";
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The cursor of the item at `offset`.
pub fn encode(offset: u64) -> String {
    base64(format!("{PREFIX}{offset}").as_bytes())
}

/// The offset a cursor names, or None if it is not one of ours.
pub fn decode(cursor: &str) -> Option<u64> {
    let raw = unbase64(cursor)?;
    let text = std::str::from_utf8(&raw).ok()?;
    let digits = text.strip_prefix(PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The arguments that select a page of a connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// `first: n`.
    pub first: Option<u64>,
    /// `last: n`.
    pub last: Option<u64>,
    /// The offset `after:` names.
    pub after: Option<u64>,
    /// The offset `before:` names.
    pub before: Option<u64>,
}

/// One page of a connection of `total` items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Offsets of the items on the page.
    pub range: Range<u64>,
    /// Items exist after the page.
    pub has_next: bool,
    /// Items exist before the page.
    pub has_previous: bool,
}

impl Window {
    /// The page this window selects from `total` items (Relay's algorithm: cut at the
    /// cursors, then keep the first or last n).
    pub fn page(&self, total: u64) -> Page {
        let mut start = self.after.map_or(0, |a| a.saturating_add(1)).min(total);
        let mut end = self.before.map_or(total, |b| b.min(total)).max(start);
        if let Some(n) = self.first {
            end = end.min(start.saturating_add(n));
        }
        if let Some(n) = self.last {
            start = start.max(end.saturating_sub(n));
        }
        Page {
            range: start..end,
            has_next: end < total,
            has_previous: start > 0,
        }
    }
}
