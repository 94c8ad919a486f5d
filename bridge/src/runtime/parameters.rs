//! Operators' `getpar`/`setpar` in the site task: the core sends the command and answers
//! later, under an id; the operator's reply channel waits here until then.

use std::collections::BTreeMap;

use ctrl22_node::mesh::ParName;
use tokio::sync::oneshot;

use super::SiteTask;
use crate::bay::BayId;
use crate::site::parameters::{ParAnswer, ParRefusal};

type Reply = oneshot::Sender<Result<ParAnswer, ParRefusal>>;

/// Reply channels by request id; the core bounds how many requests wait.
#[derive(Debug, Default)]
pub(super) struct Waiting(BTreeMap<u64, Reply>);

impl SiteTask {
    /// # Errors
    /// When the store thread has stopped.
    pub(super) async fn parameter(
        &mut self,
        bay: BayId,
        par: ParName,
        value: Option<i16>,
        reply: Reply,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        match self.site.request_parameter(now, &bay, par.clone(), value) {
            Ok((id, outputs)) => {
                tracing::info!(%bay, "operator {} {par}", if value.is_some() { "setpar" } else { "getpar" });
                self.parameter_replies.0.insert(id, reply);
                self.execute(now, outputs).await?;
            }
            Err(refusal) => {
                tracing::info!(%bay, "operator parameter {par} refused: {refusal}");
                let _ = reply.send(Err(refusal));
            }
        }
        Ok(())
    }

    /// Hands the core's answers to the operators waiting for them.
    pub(super) fn answer_parameters(&mut self) {
        for (id, answer) in self.site.take_parameter_answers() {
            if let Some(reply) = self.parameter_replies.0.remove(&id) {
                // The operator may have given up; nothing to do then.
                let _ = reply.send(answer);
            }
        }
    }
}
