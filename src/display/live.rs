//! The live bars of `work` on a terminal (indicatif): a header with the rate and the
//! estimated finish, a countdown while every token is spent, one bar per repository
//! (PRs complete of PRs discovered) and one per token (quota left, reset time).

use super::{effective_points, effective_remaining, format, logs, token_state, View};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;

pub(super) struct Screen {
    multi: MultiProgress,
    header: ProgressBar,
    /// Shown only while every token is out of quota.
    countdown: Option<ProgressBar>,
    repos: HashMap<String, ProgressBar>,
    tokens: HashMap<String, ProgressBar>,
    workers: usize,
    /// `--reserve`, shown in the header when set.
    reserve: i64,
}

fn text_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}").expect("valid template")
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("█▉▊▋▌▍▎▏ ")
}

impl Screen {
    pub(super) fn new(workers: usize, reserve: i64) -> Screen {
        console::set_colors_enabled_stderr(super::color_on_stderr());
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
        let header = multi.add(ProgressBar::new(0).with_style(text_style()));
        header.set_message("seedq work: starting…");
        logs::attach(&multi);
        Screen {
            multi,
            header,
            countdown: None,
            repos: HashMap::new(),
            tokens: HashMap::new(),
            workers,
            reserve,
        }
    }

    pub(super) fn draw(&mut self, view: &View) {
        let snapshot = view.snapshot;
        let now = snapshot.taken_at;
        let (complete, _, expected) = snapshot.prs();
        let reserve = match self.reserve {
            0 => String::new(),
            n => format!(" · reserve {}", format::thousands(n)),
        };
        self.header.set_message(format!(
            "seedq work · {} workers{reserve} · {} · {} requests in {} · {} of ~{} PRs · {}",
            self.workers,
            view.rate(),
            format::thousands(view.requests as i64),
            format::duration_ms(view.elapsed.as_millis() as i64),
            format::thousands(complete),
            format::thousands(expected),
            view.eta()
        ));

        match snapshot.paused_until() {
            Some(until) => {
                let countdown = self.countdown.get_or_insert_with(|| {
                    self.multi
                        .insert_after(&self.header, ProgressBar::new(0))
                        .with_style(
                            ProgressStyle::with_template("{msg:.yellow}").expect("valid template"),
                        )
                });
                countdown.set_message(format!(
                    "⏸ every token is out of quota: resuming in {} (at {})",
                    format::duration_ms(until - now),
                    format::clock(until)
                ));
            }
            None => {
                if let Some(countdown) = self.countdown.take() {
                    countdown.finish_and_clear();
                    self.multi.remove(&countdown);
                }
            }
        }

        let label_width = snapshot
            .repos
            .iter()
            .map(|r| r.repo.chars().count())
            .chain(snapshot.tokens.iter().map(|t| t.label.chars().count()))
            .max()
            .unwrap_or(10)
            .min(40);
        for repo in &snapshot.repos {
            let bar = self.repos.entry(repo.repo.clone()).or_insert_with(|| {
                // Repositories above the tokens, in the order they appear.
                let bar = self
                    .multi
                    .add(ProgressBar::new(0))
                    .with_style(bar_style(&format!(
                        "{{prefix:<{label_width}}} {{bar:30.green/black}} {{msg}}"
                    )));
                bar.set_prefix(repo.repo.clone());
                bar
            });
            let total = repo.prs_expected.max(repo.prs_discovered).max(1) as u64;
            bar.set_length(total);
            bar.set_position(repo.prs_complete.max(0) as u64);
            let listing = if repo.list_complete || repo.jobs.queued + repo.jobs.running == 0 {
                String::new()
            } else {
                format!(
                    " · listing, ~{} in all",
                    format::thousands(repo.prs_expected)
                )
            };
            let failed = if repo.jobs.failed > 0 {
                format!(" · {} failed jobs", format::thousands(repo.jobs.failed))
            } else {
                String::new()
            };
            bar.set_message(format!(
                "{} of {} PRs complete{listing} · {} jobs left{failed}",
                format::thousands(repo.prs_complete),
                format::thousands(repo.prs_discovered),
                format::thousands(repo.jobs.queued + repo.jobs.running),
            ));
        }

        for token in &snapshot.tokens {
            let bar = self
                .tokens
                .entry(token.fingerprint.clone())
                .or_insert_with(|| {
                    let bar = self
                        .multi
                        .add(ProgressBar::new(0))
                        .with_style(bar_style(&format!(
                            "{{prefix:<{label_width}}} {{bar:30.cyan/black}} {{msg}}"
                        )));
                    bar.set_prefix(token.label.clone());
                    bar
                });
            let remaining = effective_remaining(token, now);
            bar.set_length(token.quota_limit.max(1) as u64);
            bar.set_position(remaining.clamp(0, token.quota_limit.max(0)) as u64);
            let reset = match token.reset_at {
                Some(at) if at > now => format!(
                    "resets {} (in {})",
                    format::clock(at),
                    format::duration_ms(at - now)
                ),
                _ => "full".to_owned(),
            };
            let state = match (token_state(token, now), token.paused_until) {
                ("invalid", _) => "invalid: 401 Bad credentials".to_owned(),
                ("paused", Some(until)) => {
                    format!("paused (secondary limit) until {}", format::clock(until))
                }
                (state, _) => state.to_owned(),
            };
            let points = match token.graphql.requests {
                0 => String::new(),
                _ => format!(
                    " · {}/{} GraphQL points",
                    format::thousands(effective_points(&token.graphql, now)),
                    format::thousands(token.graphql.quota_limit)
                ),
            };
            // The requests it may have in flight (adaptive concurrency).
            let in_flight = token
                .concurrency
                .map(|n| format!(" · ≤ {n} in flight"))
                .unwrap_or_default();
            bar.set_message(format!(
                "{}/{} quota{points} · {reset} · {state}{in_flight}",
                format::thousands(remaining),
                format::thousands(token.quota_limit),
            ));
        }
        self.flush();
    }

    /// Puts every bar's new line on screen now: indicatif throttles redraws, which
    /// would otherwise leave some lines a refresh behind the others.
    fn flush(&self) {
        self.header.force_draw();
        if let Some(countdown) = &self.countdown {
            countdown.force_draw();
        }
        for bar in self.repos.values().chain(self.tokens.values()) {
            bar.force_draw();
        }
    }

    /// Takes the bars off the screen and sends logs straight to stderr again.
    pub(super) fn clear(self) {
        logs::release();
        let _ = self.multi.clear();
    }
}
