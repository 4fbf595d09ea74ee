//! Containers that exit: the kubelet's side of a process ending. A container whose
//! command finishes (`images::run_of`) is reported Terminated (Completed / Error); then,
//! by the pod's restartPolicy, it is restarted — at once the first time, then after
//! kubelet's crash back-off (10s doubling to 5m, shown as CrashLoopBackOff) — or left
//! terminated, and a pod whose containers have all finished goes Succeeded or Failed.

use std::sync::Arc;

use apiserver::json::At;
use serde_json::{json, Value};

use super::cache::{str_at, without, Key};
use super::kubelet::{pods_res, Timer};
use super::{ignore_not_found, split_key, Cluster, ClusterError};
use crate::images::{self, Run};

/// kubelet's crash back-off (`flowcontrol.Backoff`): 10s, doubling, capped at 5 minutes;
/// forgotten once the container ran for twice the cap since its last restart.
const BACKOFF_INITIAL_MS: i64 = 10_000;
const BACKOFF_MAX_MS: i64 = 300_000;

/// One container's back-off entry: the current delay and when it last grew.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    delay_ms: i64,
    last_update_ms: i64,
}

impl Backoff {
    fn expired(&self, event_ms: i64) -> bool {
        event_ms - self.last_update_ms > 2 * BACKOFF_MAX_MS
    }

    /// `Backoff.Next(id, finishedAt)` at a restart: start at the initial delay (or again
    /// if the run that ended at `finished_ms` was long enough to expire the entry), else
    /// double.
    fn next(entry: Option<Backoff>, finished_ms: i64, now_ms: i64) -> Backoff {
        let delay_ms = match entry {
            Some(e) if !e.expired(finished_ms) => (e.delay_ms * 2).min(BACKOFF_MAX_MS),
            _ => BACKOFF_INITIAL_MS,
        };
        Backoff {
            delay_ms,
            last_update_ms: now_ms,
        }
    }
}

/// A Go `time.Duration` of whole milliseconds as `String()` prints it: `567ms`, `8.27s`,
/// `1m20s`, `5m0s`, `1h2m3.4s` (the kubelet truncates pull times to milliseconds).
pub(super) fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms < 1000 {
        return format!("{sign}{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = sign.to_owned();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&s.to_string());
    if frac > 0 {
        let digits = format!("{frac:03}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('s');
    out
}

/// Container `i`'s name and the pod as kubelet names it in messages: `web_default(<uid>)`.
fn container_and_pod_names(pod: &Value, key: &str, uid: &str, i: usize) -> (String, String) {
    let cname = str_at(pod, &format!("/spec/containers/{i}/name"))
        .unwrap_or_default()
        .to_owned();
    let (ns, name) = split_key(key);
    (cname, format!("{name}_{}({uid})", ns.unwrap_or("default")))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// What container `spec` does once started.
pub(super) fn run_of(spec: &Value) -> Run {
    images::run_of(
        spec.get("image")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        &strings(spec.get("command")),
        &strings(spec.get("args")),
    )
}

/// Ready / ContainersReady from the container statuses, keeping a condition's transition
/// time when its status does not change.
/// A container status after its process ended with `code` at `now`: terminated
/// (Completed or Error, with the run's start), no longer ready or started.
fn terminate(cs: &mut Value, code: i32, now: &str) {
    let started = cs.at(&["state", "running", "startedAt"]).cloned();
    cs["state"] = json!({"terminated": {
        "exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
        "startedAt": started, "finishedAt": now, "containerID": cs.get("containerID"),
    }});
    cs["ready"] = json!(false);
    cs["started"] = json!(false);
}

fn set_readiness(status: &mut Value, now: &str, completed: bool) {
    let unready: Vec<String> = status
        .at(&["containerStatuses"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("ready").and_then(Value::as_bool) != Some(true))
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let Some(conds) = status.get_mut("conditions").and_then(Value::as_array_mut) else {
        return;
    };
    for c in conds.iter_mut() {
        let ty = c.get("type").and_then(Value::as_str).unwrap_or_default();
        if ty != "Ready" && ty != "ContainersReady" {
            continue;
        }
        let ready = unready.is_empty();
        let was = c.get("status").and_then(Value::as_str) == Some("True");
        let since = if was == ready {
            c.get("lastTransitionTime").cloned().unwrap_or(json!(now))
        } else {
            json!(now)
        };
        let mut n = json!({"type": ty, "status": if ready { "True" } else { "False" },
            "lastTransitionTime": since, "lastProbeTime": null});
        if !ready {
            n["reason"] = json!(if completed {
                "PodCompleted"
            } else {
                "ContainersNotReady"
            });
            if !completed {
                n["message"] = json!(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                ));
            }
        }
        *c = n;
    }
}

impl Cluster {
    /// Schedules the exit of every container of `pod` whose process ends by itself.
    pub(super) fn schedule_exits(&mut self, key: &Key, pod: &Value, restarts: &[i64]) {
        let uid = str_at(pod, &["metadata", "uid"])
            .unwrap_or_default()
            .to_owned();
        let specs: &[Value] = pod
            .at(&["spec", "containers"])
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        for (i, spec) in specs.iter().enumerate() {
            if let Run::Exits { after_ms, code } = run_of(spec) {
                let at = self.clock.now_ms() + after_ms;
                self.schedule(
                    at,
                    Timer::Exited {
                        key: key.clone(),
                        uid: uid.clone(),
                        container: i,
                        restarts: restarts.get(i).copied().unwrap_or(0),
                        code,
                    },
                );
            }
        }
    }

    /// After netsim restarts on a kept store: pick up where the adopted pod's containers
    /// are — a running one still ends when its command would, an exited one is handled on
    /// the next sync, one in back-off restarts when that would have run out (a restarted
    /// kubelet has lost its back-off memory, as a real one does).
    pub(super) fn resume_containers(&mut self, key: &Key, pod: &Value) {
        if str_at(pod, &["status", "phase"]) != Some("Running") {
            return;
        }
        let uid = str_at(pod, &["metadata", "uid"])
            .unwrap_or_default()
            .to_owned();
        let specs: &[Value] = pod
            .at(&["spec", "containers"])
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let now = self.clock.now_ms();
        let time = |c: &Value, ptr: &[&str]| str_at(c, ptr).and_then(apiserver::sim::parse_rfc3339);
        for (i, spec) in specs.iter().enumerate() {
            let Some(cs) = pod.at(&format!("/status/containerStatuses/{i}")) else {
                continue;
            };
            let restarts = cs.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            let (key, uid) = (key.clone(), uid.clone());
            if let Some(started) = time(cs, &["state", "running", "startedAt"]) {
                if let Run::Exits { after_ms, code } = run_of(spec) {
                    let at = (started + after_ms).max(now);
                    let t = Timer::Exited {
                        key,
                        uid,
                        container: i,
                        restarts,
                        code,
                    };
                    self.schedule(at, t);
                }
            } else if cs.at(&["state", "terminated"]).is_some() {
                let t = Timer::CrashBackOff {
                    key,
                    uid,
                    container: i,
                    restarts,
                };
                self.schedule(now + 1_000, t);
            } else if str_at(cs, &["state", "waiting", "reason"]) == Some("CrashLoopBackOff") {
                let finished = time(cs, &["lastState", "terminated", "finishedAt"]).unwrap_or(now);
                let t = Timer::Restart {
                    key,
                    uid,
                    container: i,
                    restarts,
                };
                self.schedule((finished + BACKOFF_INITIAL_MS).max(now), t);
            }
        }
    }

    /// The pod, if it is still this one, alive, and its container `i` is in the run
    /// numbered `restarts` (a timer from an earlier run is stale).
    fn pod_at_run(&self, key: &str, uid: &str, i: usize, restarts: i64) -> Option<Arc<Value>> {
        let pod = self.cache.get_shared("pods", key)?;
        let current = pod
            .at(&format!("/status/containerStatuses/{i}/restartCount"))
            .and_then(Value::as_i64);
        (str_at(pod, &["metadata", "uid"]) == Some(uid)
            && pod.at(&["metadata", "deletionTimestamp"]).is_none()
            && current == Some(restarts))
        .then(|| Arc::clone(pod))
    }

    async fn write_pod_status(
        &mut self,
        key: &Key,
        pod: &Value,
        status: Value,
    ) -> Result<(), ClusterError> {
        let (ns, name) = split_key(key);
        let mut n = without(pod, &["status"]);
        n["status"] = status;
        ignore_not_found(self.api.update_status(pods_res()?, ns, name, n).await)?;
        Ok(())
    }

    /// Container `i`'s process ended with `code`.
    pub(super) async fn container_exited(
        &mut self,
        key: &Key,
        uid: &str,
        i: usize,
        restarts: i64,
        code: i32,
    ) -> Result<(), ClusterError> {
        let Some(pod) = self.pod_at_run(key, uid, i, restarts) else {
            return Ok(());
        };
        if pod
            .at(&format!("/status/containerStatuses/{i}/state/running"))
            .is_none()
        {
            return Ok(());
        }
        let now = self.clock.now_rfc3339();
        let mut status = pod.get("status").cloned().unwrap_or(json!({}));
        terminate(&mut status["containerStatuses"][i], code, &now);
        let policy = str_at(&pod, &["spec", "restartPolicy"]).unwrap_or("Always");
        let restart = match policy {
            "Never" => false,
            "OnFailure" => code != 0,
            _ => true,
        };
        // Without a restart to come, a pod whose containers have all ended is finished.
        let finished = !restart
            && status["containerStatuses"]
                .as_array()
                .is_some_and(|all| all.iter().all(|c| c.at(&["state", "terminated"]).is_some()));
        if finished {
            let all_ok = status["containerStatuses"].as_array().is_some_and(|all| {
                all.iter()
                    .all(|c| c.at(&["state", "terminated", "exitCode"]) == Some(&json!(0)))
            });
            status["phase"] = json!(if all_ok { "Succeeded" } else { "Failed" });
        }
        set_readiness(&mut status, &now, finished);
        self.write_pod_status(key, &pod, status).await?;
        if restart {
            // kubelet notices on its next sync, about a second later.
            let at = self.clock.now_ms() + 1_000;
            self.schedule(
                at,
                Timer::CrashBackOff {
                    key: key.clone(),
                    uid: uid.to_owned(),
                    container: i,
                    restarts,
                },
            );
        }
        Ok(())
    }

    /// The sync after an exit (kubelet's `doBackOff`): restart at once unless the container
    /// is in its back-off window, else report CrashLoopBackOff and wait the window out.
    pub(super) async fn crash_backoff(
        &mut self,
        key: &Key,
        uid: &str,
        i: usize,
        restarts: i64,
    ) -> Result<(), ClusterError> {
        let Some(pod) = self.pod_at_run(key, uid, i, restarts) else {
            return Ok(());
        };
        let Some(terminated) = pod
            .at(&format!("/status/containerStatuses/{i}/state/terminated"))
            .cloned()
        else {
            return Ok(());
        };
        let now_ms = self.clock.now_ms();
        let finished = terminated
            .get("finishedAt")
            .and_then(Value::as_str)
            .and_then(apiserver::sim::parse_rfc3339)
            .unwrap_or(now_ms);
        let entry = self.kubelet.backoff.get(&(uid.to_owned(), i)).copied();
        let in_backoff =
            entry.is_some_and(|e| !e.expired(finished) && now_ms - finished < e.delay_ms);
        let Some(entry) = entry.filter(|_| in_backoff) else {
            return self.restart_or_pull(key, uid, i, restarts).await;
        };
        let backoff = entry.delay_ms;
        let (cname, who) = container_and_pod_names(&pod, key, uid, i);
        let mut status = pod.get("status").cloned().unwrap_or(json!({}));
        let cs = &mut status["containerStatuses"][i];
        cs["lastState"] = json!({"terminated": terminated});
        cs["state"] = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!(
            "back-off {} restarting failed container={cname} pod={who}", go_duration(backoff))}});
        self.write_pod_status(key, &pod, status).await?;
        self.record_crash_backoff(&pod, key, uid, i).await?;
        // The back-off runs from when the container finished.
        let at = (finished + backoff).max(now_ms);
        self.schedule(
            at,
            Timer::Restart {
                key: key.clone(),
                uid: uid.to_owned(),
                container: i,
                restarts,
            },
        );
        self.schedule_crash_resync(key, uid, i, restarts, at, 0);
        Ok(())
    }

    /// Requeues the pod worker's next sync inside a crash back-off that ends at `until`.
    fn schedule_crash_resync(
        &mut self,
        key: &Key,
        uid: &str,
        i: usize,
        restarts: i64,
        until: i64,
        n: u32,
    ) {
        let next = self.clock.now_ms() + super::kubelet::resync_delay_ms(uid, n);
        if next < until {
            self.schedule(
                next,
                Timer::CrashBackOffResync {
                    key: key.clone(),
                    uid: uid.to_owned(),
                    container: i,
                    restarts,
                    until,
                    n,
                },
            );
        }
    }

    /// A resync inside a crash back-off: the kubelet's doBackOff reports it again.
    pub(super) async fn crash_backoff_resync(
        &mut self,
        key: &Key,
        uid: &str,
        i: usize,
        restarts: i64,
        until: i64,
        n: u32,
    ) -> Result<(), ClusterError> {
        let Some(pod) = self.pod_at_run(key, uid, i, restarts) else {
            return Ok(());
        };
        let waiting = str_at(
            &pod,
            &format!("/status/containerStatuses/{i}/state/waiting/reason"),
        );
        if waiting != Some("CrashLoopBackOff") {
            return Ok(());
        }
        self.record_crash_backoff(&pod, key, uid, i).await?;
        self.schedule_crash_resync(key, uid, i, restarts, until, n + 1);
        Ok(())
    }

    /// kubelet's doBackOff Event for container `i`, at the crash and at every resync.
    async fn record_crash_backoff(
        &mut self,
        pod: &Value,
        key: &Key,
        uid: &str,
        i: usize,
    ) -> Result<(), ClusterError> {
        let (cname, who) = container_and_pod_names(pod, key, uid, i);
        let node = str_at(pod, &["spec", "nodeName"])
            .unwrap_or_default()
            .to_owned();
        self.record_event(
            pod,
            "Warning",
            "BackOff",
            format!("Back-off restarting failed container {cname} in pod {who}"),
            "kubelet",
            Some(&node),
        )
        .await
    }

    /// "Pulling" container `i`'s image now, and its restart after `ms`, when it is in: the
    /// restart then reports "Successfully pulled" (its `redefining` slot holds the start).
    async fn pull_then_restart(
        &mut self,
        pod: &Value,
        key: &Key,
        uid: &str,
        i: usize,
        restarts: i64,
        ms: i64,
    ) -> Result<(), ClusterError> {
        let node = str_at(pod, &["spec", "nodeName"])
            .unwrap_or_default()
            .to_owned();
        let image = str_at(pod, &format!("/spec/containers/{i}/image"))
            .unwrap_or_default()
            .to_owned();
        self.record_event(
            pod,
            "Normal",
            "Pulling",
            format!("Pulling image \"{image}\""),
            "kubelet",
            Some(&node),
        )
        .await?;
        let began = self.clock.now_ms();
        self.kubelet
            .redefining
            .insert((uid.to_owned(), i), Some(began));
        self.schedule(
            began + ms,
            Timer::Restart {
                key: key.clone(),
                uid: uid.to_owned(),
                container: i,
                restarts,
            },
        );
        Ok(())
    }

    /// Starts container `i` again: the old run becomes `lastState`, the count goes up.
    /// kubelet's computePodActions: a running container whose image no longer matches its
    /// spec (`kubectl set image` or `apply` on a Pod) is killed — "definition changed, will
    /// be restarted" — and started again from the new spec, counting a restart.
    pub(super) async fn check_definitions(
        &mut self,
        key: &Key,
        uid: &str,
        pod: &Value,
    ) -> Result<(), ClusterError> {
        // Runs on every status change of every pod: reads in place, allocates only for a
        // container that needs a look.
        let list = |p: &[&str]| {
            pod.at(p)
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
        };
        let statuses = list(&["status", "containerStatuses"]);
        let node = str_at(pod, &["spec", "nodeName"]).unwrap_or_default();
        for (i, (spec, cs)) in list(&["spec", "containers"])
            .iter()
            .zip(statuses)
            .enumerate()
        {
            let image = spec
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let slot = (uid.to_owned(), i);
            // Waiting on an image that does not exist: a spec naming another one starts it.
            if let Some(bad) = self.kubelet.bad_images.get(&slot) {
                if bad != image {
                    self.kubelet.bad_images.remove(&slot);
                    let restarts = cs.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
                    self.start_redefined(key, uid, i, restarts).await?;
                }
                continue;
            }
            if cs.at(&["state", "running"]).is_none()
                || cs.get("image").and_then(Value::as_str)
                    == Some(images::qualified(image).as_str())
                || self.kubelet.redefining.contains_key(&slot)
            {
                continue;
            }
            self.kubelet.redefining.insert(slot, None);
            let cname = spec.get("name").and_then(Value::as_str).unwrap_or_default();
            self.record_event(
                pod,
                "Normal",
                "Killing",
                format!("Container {cname} definition changed, will be restarted"),
                "kubelet",
                Some(node),
            )
            .await?;
            // SIGTERM: a server that stops on it is gone within a second; anything else is
            // killed when the grace period ends.
            let old_image = cs.get("image").and_then(Value::as_str).unwrap_or_default();
            let quick = images::lookup(old_image).is_some_and(|i| i.stops_on_sigterm);
            let grace = pod
                .at(&["spec", "terminationGracePeriodSeconds"])
                .and_then(Value::as_i64)
                .unwrap_or(30)
                * 1000;
            let (delay, code) = if quick {
                (grace.min(1000), 0)
            } else {
                (grace, 137)
            };
            let restarts = cs.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            let at = self.clock.now_ms() + delay;
            self.schedule(
                at,
                Timer::Redefined {
                    key: key.clone(),
                    uid: uid.to_owned(),
                    container: i,
                    restarts,
                    code,
                },
            );
        }
        Ok(())
    }

    /// The killed container has stopped: record how it ended, then start the new one — at
    /// once when its image is on the node, else after pulling it.
    pub(super) async fn redefined_stopped(
        &mut self,
        key: &Key,
        uid: &str,
        i: usize,
        restarts: i64,
        code: i32,
    ) -> Result<(), ClusterError> {
        let Some(pod) = self.pod_at_run(key, uid, i, restarts) else {
            self.kubelet.redefining.remove(&(uid.to_owned(), i));
            return Ok(());
        };
        let now = self.clock.now_rfc3339();
        let mut status = pod.get("status").cloned().unwrap_or(json!({}));
        terminate(&mut status["containerStatuses"][i], code, &now);
        set_readiness(&mut status, &now, false);
        self.write_pod_status(key, &pod, status).await?;
        // The kubelet's next sync starts the new container (a timer, so that it reads the
        // status just written).
        let now_ms = self.clock.now_ms();
        self.schedule(
            now_ms,
            Timer::StartRedefined {
                key: key.clone(),
                uid: uid.to_owned(),
                container: i,
                restarts,
            },
        );
        Ok(())
    }

    /// Starts container `i` from its (new) spec: at once when the image is on the node, after
    /// a pull when it is not, and not at all when the image does not exist (ErrImagePull,
    /// until the spec names one that does).
    pub(super) async fn start_redefined(
        &mut self,
        key: &Key,
        uid: &str,
        i: usize,
        restarts: i64,
    ) -> Result<(), ClusterError> {
        let Some(pod) = self.cache.get_shared("pods", key).cloned() else {
            return Ok(());
        };
        let node = str_at(&pod, &["spec", "nodeName"])
            .unwrap_or_default()
            .to_owned();
        let image = str_at(&pod, &format!("/spec/containers/{i}/image"))
            .unwrap_or_default()
            .to_owned();
        let present = self
            .kubelet
            .images
            .contains(&(node.clone(), images::qualified(&image)));
        match images::lookup(&image) {
            None => {
                let waiting = self.image_missing(&pod, &node, &image).await?;
                self.kubelet.redefining.remove(&(uid.to_owned(), i));
                self.kubelet
                    .bad_images
                    .insert((uid.to_owned(), i), image.clone());
                let mut status = pod.get("status").cloned().unwrap_or(json!({}));
                let cs = &mut status["containerStatuses"][i];
                if let Some(t) = cs.at(&["state", "terminated"]).cloned() {
                    cs["lastState"] = json!({ "terminated": t });
                }
                cs["state"] = json!({"waiting": {"reason": "ErrImagePull", "message": waiting}});
                self.write_pod_status(key, &pod, status).await
            }
            Some(info) if !present => {
                let ms = 5_000 + (info.size_bytes / 1_000) as i64 + self.rng.below(5_000) as i64;
                self.pull_then_restart(&pod, key, uid, i, restarts, ms)
                    .await
            }
            _ => self.restart_container(key, uid, i, restarts).await,
        }
    }

    /// Restarts container `i`, pulling its image again first when its pull policy is
    /// `Always` (the kubelet ensures the image for every container start, and `busybox` or
    /// `nginx:latest` default to `Always`): "Pulling" now, the restart with its
    /// "Successfully pulled" event once the pull is done.
    pub(super) async fn restart_or_pull(
        &mut self,
        key: &Key,
        uid: &str,
        i: usize,
        restarts: i64,
    ) -> Result<(), ClusterError> {
        let slot = (uid.to_owned(), i);
        if matches!(self.kubelet.redefining.get(&slot), Some(Some(_))) {
            // The pull is done.
            return self.restart_container(key, uid, i, restarts).await;
        }
        let Some(pod) = self.pod_at_run(key, uid, i, restarts) else {
            return Ok(());
        };
        let image = str_at(&pod, &format!("/spec/containers/{i}/image"))
            .unwrap_or_default()
            .to_owned();
        let always =
            str_at(&pod, &format!("/spec/containers/{i}/imagePullPolicy")) == Some("Always");
        if !always || images::lookup(&image).is_none() {
            return self.restart_container(key, uid, i, restarts).await;
        }
        // A present image re-pulled only has its digest checked, as at the first start.
        let ms = 600 + self.rng.below(400) as i64;
        self.pull_then_restart(&pod, key, uid, i, restarts, ms)
            .await
    }

    pub(super) async fn restart_container(
        &mut self,
        key: &Key,
        uid: &str,
        i: usize,
        restarts: i64,
    ) -> Result<(), ClusterError> {
        let Some(pod) = self.pod_at_run(key, uid, i, restarts) else {
            return Ok(());
        };
        let now_ms = self.clock.now_ms();
        let finished = ["state", "lastState"]
            .iter()
            .find_map(|s| {
                str_at(
                    &pod,
                    &format!("/status/containerStatuses/{i}/{s}/terminated/finishedAt"),
                )
            })
            .and_then(apiserver::sim::parse_rfc3339)
            .unwrap_or(now_ms);
        let slot = (uid.to_owned(), i);
        let next = Backoff::next(self.kubelet.backoff.get(&slot).copied(), finished, now_ms);
        self.kubelet.backoff.insert(slot.clone(), next);
        let now = self.clock.now_rfc3339();
        let node = str_at(&pod, &["spec", "nodeName"])
            .unwrap_or_default()
            .to_owned();
        let spec = pod
            .at(&format!("/spec/containers/{i}"))
            .cloned()
            .unwrap_or(json!({}));
        let image = spec
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let cname = spec
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut status = pod.get("status").cloned().unwrap_or(json!({}));
        let cs = &mut status["containerStatuses"][i];
        let last = match cs.at(&["state", "terminated"]) {
            Some(t) => json!({"terminated": t}),
            None => cs.get("lastState").cloned().unwrap_or(json!({})),
        };
        cs["lastState"] = last;
        cs["state"] = json!({"running": {"startedAt": now}});
        cs["restartCount"] = json!(restarts + 1);
        cs["ready"] = json!(true);
        cs["started"] = json!(true);
        cs["containerID"] = json!(format!("containerd://{}", self.rng.hex(64)));
        // The spec's image: a container replaced after a definition change runs the new one.
        cs["image"] = json!(images::qualified(&image));
        cs["imageID"] = json!(self.kubelet.image_id(&image));
        set_readiness(&mut status, &now, false);
        let pulled = match self.kubelet.redefining.remove(&slot) {
            Some(Some(began)) => {
                self.kubelet.preload_image(&node, &image);
                let took = go_duration(now_ms - began);
                let size = images::lookup(&image).map_or(0, |i| i.size_bytes);
                format!("Successfully pulled image \"{image}\" in {took} ({took} including waiting). Image size: {size} bytes.")
            }
            _ => format!("Container image \"{image}\" already present on machine"),
        };
        for (reason, message) in [
            ("Pulled", pulled),
            ("Created", format!("Created container: {cname}")),
            ("Started", format!("Started container {cname}")),
        ] {
            self.record_event(&pod, "Normal", reason, message, "kubelet", Some(&node))
                .await?;
        }
        self.write_pod_status(key, &pod, status).await?;
        if let Run::Exits { after_ms, code } = run_of(&spec) {
            let at = self.clock.now_ms() + after_ms;
            self.schedule(
                at,
                Timer::Exited {
                    key: key.clone(),
                    uid: uid.to_owned(),
                    container: i,
                    restarts: restarts + 1,
                    code,
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_back_off_doubles_to_five_minutes_and_is_forgotten_after_ten() {
        let mut entry = None;
        let mut steps = Vec::new();
        for t in 0..8 {
            let e = Backoff::next(entry, t * 1_000, t * 1_000);
            steps.push(go_duration(e.delay_ms));
            entry = Some(e);
        }
        assert_eq!(
            steps,
            ["10s", "20s", "40s", "1m20s", "2m40s", "5m0s", "5m0s", "5m0s"]
        );
        let pulls = [0, 7, 567, 1_000, 8_270, 22_219, 61_500, 3_600_001];
        assert_eq!(
            pulls.map(go_duration),
            [
                "0s",
                "7ms",
                "567ms",
                "1s",
                "8.27s",
                "22.219s",
                "1m1.5s",
                "1h0m0.001s"
            ]
        );
        // A container that ran for more than 10 minutes since its last restart starts over.
        let late = Backoff::next(entry, 7_000 + 600_001, 7_000 + 600_002);
        assert_eq!(late.delay_ms, 10_000);
        // Waiting out a long back-off does not count as running.
        let waited = Backoff::next(entry, 7_000 + 300_000, 7_000 + 600_001);
        assert_eq!(waited.delay_ms, 300_000);
    }
}
