//! Small renderings shared by `status`, `tokens` and the live display.

/// `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration for people: `42s`, `3m 05s`, `2h 14m`, `3d 4h`.
pub fn duration_ms(ms: i64) -> String {
    let secs = (ms.max(0) + 999) / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A wall-clock time in the local zone, `21:42:10`; with the date when not today.
pub fn clock(epoch_ms: i64) -> String {
    let Some(at) = chrono::DateTime::from_timestamp_millis(epoch_ms) else {
        return "-".into();
    };
    let local = at.with_timezone(&chrono::Local);
    if local.date_naive() == chrono::Local::now().date_naive() {
        local.format("%H:%M:%S").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// UTC ISO 8601 to the second, for JSON: `2026-11-28T21:42:10Z`.
pub fn iso(epoch_ms: Option<i64>) -> Option<String> {
    epoch_ms
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(-1234567), "-1,234,567");
    }

    #[test]
    fn durations_round_up_to_the_second() {
        assert_eq!(duration_ms(1), "1s");
        assert_eq!(duration_ms(65_000), "1m 05s");
        assert_eq!(duration_ms(2 * 3_600_000 + 14 * 60_000), "2h 14m");
        assert_eq!(duration_ms(-5), "0s");
    }
}
