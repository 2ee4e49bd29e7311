//! Memory benchmark: does a process's memory follow the work it does, or the size of
//! what is waiting?
//!
//! * **Consumer under backlog.** The same consumer handles the same 10,000 events once
//!   with 10,000 pending and once with 1,000,000 pending. With bounded pull batches and
//!   `max_ack_pending`, its peak RSS must not grow with the backlog.
//! * **`herald publish --jsonl`** of a 1,000,000-line file: the file is read as it is
//!   published, so the peak RSS stays far below the file's size.
//!
//! Each measured side runs as a child process of the benchmark (the `herald` binary
//! itself), whose peak RSS (`VmHWM` in `/proc/<pid>/status`) is sampled until it exits;
//! measuring in-process would count the benchmark's own buffers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::BenchError;
use herald_runtime::connection::HeraldClient;

/// Settings.
#[derive(Debug, Clone)]
pub struct MemoryBench {
    /// The `herald` binary to run the measured sides with.
    pub exe: PathBuf,
    /// Global arguments for the children (`--server URL`, `--contracts DIR`).
    pub global_args: Vec<String>,
    /// Subject of the events.
    pub subject: String,
    /// A valid event for `subject`; `event_id` is replaced per event.
    pub template: Value,
    /// Stream holding `subject` (purged between runs).
    pub stream: String,
    /// Backlogs to measure the consumer under (e.g. 10,000 and 1,000,000).
    pub pending: Vec<usize>,
    /// Events the consumer handles in each run.
    pub consume: usize,
    /// Lines of the JSON Lines file for `publish --jsonl` (0: skip).
    pub jsonl_lines: usize,
    /// Where the JSON Lines file is written.
    pub work_dir: PathBuf,
}

/// One consumer run.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerRss {
    /// Events pending when the consumer started.
    pub pending: usize,
    /// Events it handled.
    pub consumed: usize,
    /// Its peak resident set, MiB.
    pub max_rss_mib: f64,
}

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// Consumer peak RSS per backlog.
    pub consumer: Vec<ConsumerRss>,
    /// (largest - smallest) / smallest consumer peak, in percent (goal: under 20).
    pub consumer_growth_pct: f64,
    /// Lines published by `publish --jsonl`.
    pub jsonl_lines: usize,
    /// Size of that file, MiB.
    pub jsonl_file_mib: f64,
    /// Peak RSS of `publish --jsonl`, MiB (goal: under 64).
    pub jsonl_max_rss_mib: f64,
}

impl MemoryBench {
    /// Runs both measurements against the server `client` is connected to (its stream
    /// is purged: use a server of your own).
    pub async fn run(&self, client: &HeraldClient) -> Result<MemoryReport, BenchError> {
        let setup = |e: String| BenchError::Setup(e);
        let stream = client
            .jetstream()
            .get_stream(&self.stream)
            .await
            .map_err(|e| setup(e.to_string()))?;
        let mut consumer = Vec::new();
        for &pending in &self.pending {
            stream.purge().await.map_err(|e| setup(e.to_string()))?;
            self.fill(client, pending).await?;
            let n = self.consume.min(pending);
            let args = [
                "bench".to_string(),
                "consume-rss".into(),
                "--events".into(),
                n.to_string(),
                "--subject".into(),
                self.subject.clone(),
            ];
            let (rss, out) = self.child(&args)?;
            let consumed = out
                .trim()
                .parse::<usize>()
                .map_err(|_| BenchError::Consume(format!("consume-rss printed {out:?}")))?;
            consumer.push(ConsumerRss {
                pending,
                consumed,
                max_rss_mib: rss,
            });
        }
        let lo = consumer
            .iter()
            .map(|c| c.max_rss_mib)
            .fold(f64::MAX, f64::min);
        let hi = consumer.iter().map(|c| c.max_rss_mib).fold(0.0, f64::max);
        let consumer_growth_pct = if lo > 0.0 && lo < f64::MAX {
            (hi - lo) / lo * 100.0
        } else {
            0.0
        };

        let (mut jsonl_file_mib, mut jsonl_max_rss_mib) = (0.0, 0.0);
        if self.jsonl_lines > 0 {
            stream.purge().await.map_err(|e| setup(e.to_string()))?;
            let file = self.work_dir.join("bench-memory.jsonl");
            jsonl_file_mib = self.write_jsonl(&file)? as f64 / (1024.0 * 1024.0);
            let args = [
                "publish".to_string(),
                "--subject".into(),
                self.subject.clone(),
                "--jsonl".into(),
                file.display().to_string(),
            ];
            let (rss, _) = self.child(&args)?;
            jsonl_max_rss_mib = rss;
            let _ = std::fs::remove_file(&file);
            let info = stream.get_info().await.map_err(|e| setup(e.to_string()))?;
            if info.state.messages < self.jsonl_lines as u64 {
                return Err(BenchError::Publish(format!(
                    "publish --jsonl stored {} of {} events",
                    info.state.messages, self.jsonl_lines
                )));
            }
        }
        stream.purge().await.map_err(|e| setup(e.to_string()))?;
        Ok(MemoryReport {
            consumer,
            consumer_growth_pct,
            jsonl_lines: self.jsonl_lines,
            jsonl_file_mib,
            jsonl_max_rss_mib,
        })
    }

    /// Stores `n` valid events (raw pipelined publishing: the fastest way to a backlog).
    async fn fill(&self, client: &HeraldClient, n: usize) -> Result<(), BenchError> {
        let js = client.publishing_context(512);
        let mut pending = FuturesUnordered::new();
        let err = |e: String| BenchError::Publish(e);
        for _ in 0..n {
            let v = super::payload(&self.template, 0);
            let id = v["event_id"].as_str().unwrap_or_default().to_string();
            let body = Bytes::from(serde_json::to_vec(&v).map_err(|e| err(e.to_string()))?);
            let mut h = HeaderMap::new();
            h.insert(herald_runtime::headers::MSG_ID, id.as_str());
            let fut = js
                .send_publish(
                    self.subject.clone(),
                    PublishMessage::build().payload(body).headers(h),
                )
                .await
                .map_err(|e| err(e.to_string()))?;
            pending.push(std::future::IntoFuture::into_future(fut));
            while pending.len() >= 512 {
                if let Some(r) = pending.next().await {
                    r.map_err(|e| err(e.to_string()))?;
                }
            }
        }
        while let Some(r) = pending.next().await {
            r.map_err(|e| err(e.to_string()))?;
        }
        Ok(())
    }

    /// Writes `jsonl_lines` valid events, one per line; returns the file's size.
    fn write_jsonl(&self, path: &Path) -> Result<u64, BenchError> {
        let io = |e: std::io::Error| BenchError::Setup(format!("{}: {e}", path.display()));
        let mut w = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        for _ in 0..self.jsonl_lines {
            let v = super::payload(&self.template, 0);
            serde_json::to_writer(&mut w, &v).map_err(|e| BenchError::Setup(e.to_string()))?;
            w.write_all(b"\n").map_err(io)?;
        }
        w.flush().map_err(io)?;
        drop(w);
        Ok(std::fs::metadata(path).map_err(io)?.len())
    }

    /// Runs `herald <global args> <args>`, sampling its peak RSS until it exits;
    /// returns (peak RSS in MiB, its standard output).
    fn child(&self, args: &[String]) -> Result<(f64, String), BenchError> {
        let mut child = Command::new(&self.exe)
            .args(&self.global_args)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BenchError::Setup(format!("cannot run {}: {e}", self.exe.display())))?;
        let pid = child.id();
        let mut peak_kib = 0u64;
        // Drain the pipes on threads so a chatty child never blocks on a full pipe.
        let out = child.stdout.take().map(read_all);
        let err = child.stderr.take().map(read_all);
        let status = loop {
            if let Some(kib) = peak_rss_kib(pid) {
                peak_kib = peak_kib.max(kib);
            }
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(BenchError::Setup(e.to_string())),
            }
        };
        let out = out.and_then(|h| h.join().ok()).unwrap_or_default();
        let err = err.and_then(|h| h.join().ok()).unwrap_or_default();
        if !status.success() {
            return Err(BenchError::Setup(format!(
                "`herald {}` failed ({status}): {}",
                args.join(" "),
                err.trim()
            )));
        }
        Ok((peak_kib as f64 / 1024.0, out))
    }
}

fn read_all<R: std::io::Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// The measured side of the consumer run (`herald bench consume-rss`): a herald
/// consumer with a handler that only counts, on a durable of its own, until it has
/// handled `n` events; returns how many it handled.
pub async fn consume_rss(
    client: &HeraldClient,
    contracts: std::sync::Arc<dyn herald_runtime::contracts::Contracts>,
    subject: &str,
    n: usize,
) -> Result<usize, BenchError> {
    use herald_runtime::consumer::{Consumer, ConsumerConfig, Delivery, Shutdown};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let durable = format!("bench-rss-{}", std::process::id());
    let consumer = Consumer::new(
        client.clone(),
        contracts,
        ConsumerConfig::new("bench", "rss", subject).durable(durable.clone()),
    )
    .map_err(|e| BenchError::Setup(e.to_string()))?;
    let count = Arc::new(AtomicUsize::new(0));
    let shutdown = Shutdown::new();
    let handler = {
        let (count, shutdown) = (count.clone(), shutdown.clone());
        move |d: Delivery| {
            let (count, shutdown) = (count.clone(), shutdown.clone());
            async move {
                std::hint::black_box(&d.value);
                if count.fetch_add(1, Ordering::Relaxed) + 1 >= n {
                    shutdown.trigger();
                }
                Ok(())
            }
        }
    };
    let run = consumer.run(handler, shutdown.clone());
    let stats = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .map_err(|_| {
            BenchError::Consume(format!(
                "consumer stalled at {}/{n}",
                count.load(Ordering::Relaxed)
            ))
        })?
        .map_err(|e| BenchError::Consume(e.to_string()))?;
    if let Ok(stream) = client.jetstream().get_stream(consumer.stream_name()).await {
        let _ = stream.delete_consumer(&durable).await;
    }
    Ok(stats.acked as usize)
}

/// `VmHWM` (peak resident set, KiB) of process `pid`, while it runs (Linux).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    vm_hwm(&status)
}

fn vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_is_read_from_a_proc_status_text() {
        let status =
            "Name:\therald\nVmPeak:\t  200000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(vm_hwm(status), Some(51234));
        assert_eq!(vm_hwm("Name:\therald\n"), None);
    }

    #[test]
    fn this_process_has_a_peak_rss() {
        let kib = peak_rss_kib(std::process::id()).expect("VmHWM of a running process");
        assert!(kib > 0, "peak RSS {kib} KiB");
    }
}
