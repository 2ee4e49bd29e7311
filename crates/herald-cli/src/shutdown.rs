//! Signals for long-running commands (`consume`, `watch`, `serve`): the first SIGINT/SIGTERM asks
//! for a graceful stop, and the process exits within its drain timeout whether or not
//! the stop completes. While NATS is unreachable a graceful stop can wait for ever (a
//! flush, a drain, a pull that never returns); under an orchestrator every pod stopped
//! during an outage would wait for SIGKILL. Exiting early is safe: nothing unacknowledged
//! is lost, JetStream redelivers it. A second signal exits at once.

use std::time::Duration;

use herald_runtime::consumer::termination_signal;

/// Exit code when the drain timeout ran out (2: connection trouble).
pub const DRAIN_TIMEOUT_EXIT: i32 = 2;
/// Exit code on a second signal (128 + SIGINT, the shell convention).
pub const SECOND_SIGNAL_EXIT: i32 = 130;

/// Spawns the watcher: on the first signal runs `stop`, then exits the process after
/// `drain` or on a second signal, whichever comes first. A command that finishes its
/// graceful stop in time returns normally before either.
pub fn guard(command: &'static str, drain: Duration, stop: impl FnOnce() + Send + 'static) {
    tokio::spawn(async move {
        termination_signal().await;
        stop();
        tokio::select! {
            _ = termination_signal() => {
                eprintln!("{command}: second signal: exiting now; unacknowledged events will be redelivered");
                std::process::exit(SECOND_SIGNAL_EXIT);
            }
            _ = tokio::time::sleep(drain) => {
                eprintln!(
                    "{command}: not stopped {} after the signal (is NATS unreachable?): exiting; unacknowledged events will be redelivered",
                    humantime::format_duration(drain)
                );
                std::process::exit(DRAIN_TIMEOUT_EXIT);
            }
        }
    });
}
