//! A circuit breaker per channel: after a few failures in a row the channel's provider is
//! taken to be down, and its replies wait (without being attempted) while one probe at a
//! time, with growing pauses, finds out when it is back.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// When a channel's circuit opens and how long it stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitPolicy {
    /// Transient failures in a row that open the circuit.
    pub failures_to_open: u32,
    /// How long it stays open the first time; every failed probe doubles it.
    pub first_pause: Duration,
    /// The longest it stays open.
    pub max_pause: Duration,
}

impl Default for CircuitPolicy {
    fn default() -> Self {
        Self {
            failures_to_open: 3,
            first_pause: Duration::from_secs(1),
            max_pause: Duration::from_secs(5 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Sending; `failures` transient failures in a row so far.
    Closed { failures: u32 },
    /// Not sending until `until`.
    Open { until: Instant, pause: Duration },
    /// One probe is out; everything else waits for its verdict.
    Probing { pause: Duration },
}

/// One channel's circuit.
#[derive(Debug)]
pub(super) struct Circuit {
    policy: CircuitPolicy,
    state: Mutex<State>,
}

/// Leave to send once; report how it went with [`Pass::succeeded`] or [`Pass::failed`].
/// A probe dropped without a verdict (its task cancelled) lets the next send probe.
#[derive(Debug)]
pub(super) struct Pass<'a> {
    circuit: &'a Circuit,
    probe: bool,
    settled: bool,
}

impl Circuit {
    pub(super) fn new(policy: CircuitPolicy) -> Self {
        Self {
            policy,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Leave to send now, or how long to wait before asking again.
    pub(super) fn admit(&self) -> Result<Pass<'_>, Duration> {
        let mut state = self.state();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until, pause } => {
                let now = Instant::now();
                if now < until {
                    return Err(until - now);
                }
                *state = State::Probing { pause };
                true
            }
            State::Probing { pause } => return Err(pause),
        };
        Ok(Pass {
            circuit: self,
            probe,
            settled: false,
        })
    }

    /// Whether sends are held back now (so retries in place are pointless).
    pub(super) fn is_open(&self) -> bool {
        !matches!(*self.state(), State::Closed { .. })
    }
}

impl Pass<'_> {
    /// The provider answered (a delivery, or a refusal of this one message): it is up.
    pub(super) fn succeeded(mut self) {
        self.settled = true;
        let mut state = self.circuit.state();
        if self.probe {
            tracing::info!("provider answers again; circuit closed");
            *state = State::Closed { failures: 0 };
        } else if let State::Closed { .. } = *state {
            *state = State::Closed { failures: 0 };
        }
    }

    /// The provider failed transiently.
    pub(super) fn failed(mut self) {
        self.settled = true;
        let policy = &self.circuit.policy;
        let mut state = self.circuit.state();
        match *state {
            State::Closed { failures } => {
                let failures = failures + 1;
                *state = if failures >= policy.failures_to_open {
                    tracing::warn!(failures, pause = ?policy.first_pause,
                        "provider keeps failing; circuit opened, its replies wait");
                    State::Open {
                        until: Instant::now() + policy.first_pause,
                        pause: policy.first_pause,
                    }
                } else {
                    State::Closed { failures }
                };
            }
            State::Probing { pause } if self.probe => {
                let pause = pause.saturating_mul(2).min(policy.max_pause);
                tracing::warn!(?pause, "probe failed; circuit stays open");
                *state = State::Open {
                    until: Instant::now() + pause,
                    pause,
                };
            }
            // A send that started before the circuit opened: the verdict is in already.
            State::Open { .. } | State::Probing { .. } => {}
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            let mut state = self.circuit.state();
            if let State::Probing { pause } = *state {
                *state = State::Open {
                    until: Instant::now(),
                    pause,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuit() -> Circuit {
        Circuit::new(CircuitPolicy {
            failures_to_open: 2,
            first_pause: Duration::from_secs(1),
            max_pause: Duration::from_secs(3),
        })
    }

    fn fail(circuit: &Circuit) {
        circuit.admit().expect("admitted").failed();
    }

    #[tokio::test(start_paused = true)]
    async fn given_failures_in_a_row_when_the_threshold_is_reached_then_sends_wait_for_the_pause() {
        let circuit = circuit();
        fail(&circuit);
        assert!(circuit.admit().is_ok(), "one failure keeps it closed");

        fail(&circuit);

        assert_eq!(circuit.admit().err(), Some(Duration::from_secs(1)));
        assert!(circuit.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn given_an_open_circuit_when_the_pause_passes_then_one_probe_goes_and_the_rest_wait() {
        let circuit = circuit();
        fail(&circuit);
        fail(&circuit);
        tokio::time::advance(Duration::from_secs(1)).await;

        let probe = circuit.admit().expect("the probe");
        assert_eq!(circuit.admit().err(), Some(Duration::from_secs(1)));
        probe.failed();

        assert_eq!(
            circuit.admit().err(),
            Some(Duration::from_secs(2)),
            "doubled"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        circuit.admit().expect("probe").failed();
        assert_eq!(
            circuit.admit().err(),
            Some(Duration::from_secs(3)),
            "capped"
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        circuit.admit().expect("probe").succeeded();
        assert!(!circuit.is_open());
        assert!(circuit.admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn given_a_probe_dropped_without_verdict_then_the_next_send_probes() {
        let circuit = circuit();
        fail(&circuit);
        fail(&circuit);
        tokio::time::advance(Duration::from_secs(1)).await;

        drop(circuit.admit().expect("the probe"));

        assert!(circuit.admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn given_a_success_between_failures_then_the_count_starts_over() {
        let circuit = circuit();
        fail(&circuit);
        circuit.admit().expect("admitted").succeeded();
        fail(&circuit);
        assert!(!circuit.is_open());
    }
}
