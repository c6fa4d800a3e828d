//! `gateway jobs dead list` and `gateway jobs dead requeue <id>|--all`: the dead letters, and
//! putting them back in the queue with their attempts counted from zero.

use serde_json::{Value, json};

use super::{
    job::Job,
    queue::{DeadLetter, MAX_DEAD, Queue},
};
use crate::Error;

/// Up to `limit` dead letters as JSON lines: `{dead_id, job_id, kind, attempts, error, job}`.
pub(crate) async fn list(queue: &Queue, limit: usize) -> Result<Vec<String>, Error> {
    let letters = queue.dead_letters(limit).await?;
    Ok(letters
        .iter()
        .map(|letter| describe(letter).to_string())
        .collect())
}

/// Requeues the dead letter whose job id or dead-letter id is `id` (every one: `None`);
/// returns how many went back.
pub(crate) async fn requeue(queue: &Queue, id: Option<&str>) -> Result<usize, Error> {
    let letters = queue
        .dead_letters(usize::try_from(MAX_DEAD).unwrap_or(usize::MAX))
        .await?;
    let mut requeued = 0;
    for letter in &letters {
        let job = Job::decode(&letter.raw).ok();
        let wanted =
            id.is_none_or(|id| letter.entry == id || job.as_ref().is_some_and(|job| job.id == id));
        if !wanted {
            continue;
        }
        // A job starts over; an entry that is no job goes back as it was (and dies again).
        let raw = match job {
            Some(job) => Job {
                attempt: 0,
                last_error: None,
                ..job
            }
            .encode()?,
            None => letter.raw.clone(),
        };
        if queue.requeue(&letter.entry, &raw).await? {
            requeued += 1;
        }
    }
    match (id, requeued) {
        (Some(id), 0) => Err(Error::Jobs(format!("no dead letter {id}"))),
        _ => Ok(requeued),
    }
}

/// One dead letter as `list` prints it.
fn describe(letter: &DeadLetter) -> Value {
    let job: Value = serde_json::from_str(&letter.raw).unwrap_or(Value::String(letter.raw.clone()));
    json!({
        "dead_id": letter.entry,
        "job_id": job["id"],
        "kind": job["work"]["kind"],
        "attempts": job["attempt"],
        "error": letter.error,
        "job": job,
    })
}
