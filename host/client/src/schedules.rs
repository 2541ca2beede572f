//! Schedules from the client's side: list, add, pause, resume, delete, fire now, backfill.

use crate::wire::{BackfillBody, Fired, ScheduleBody, ScheduleView};
use crate::{Client, ClientError};

impl Client {
    /// Every schedule of the server's database.
    pub async fn schedules(&self) -> Result<Vec<ScheduleView>, ClientError> {
        Ok(self
            .send_retrying(|| self.request(reqwest::Method::GET, "/schedules"))
            .await?
            .1)
    }

    /// One schedule.
    pub async fn schedule(&self, name: &str) -> Result<ScheduleView, ClientError> {
        let path = format!("/schedules/{}", crate::waits::segment(name));
        Ok(self
            .send_retrying(|| self.request(reqwest::Method::GET, &path))
            .await?
            .1)
    }

    /// Adds a schedule; a name in use is refused (409).
    pub async fn add_schedule(&self, body: &ScheduleBody) -> Result<ScheduleView, ClientError> {
        Ok(self
            .send(self.request(reqwest::Method::POST, "/schedules").json(body))
            .await?
            .1)
    }

    /// Pauses (`true`) or resumes a schedule.
    pub async fn pause_schedule(
        &self,
        name: &str,
        paused: bool,
    ) -> Result<ScheduleView, ClientError> {
        let verb = if paused { "pause" } else { "resume" };
        let path = format!("/schedules/{}/{verb}", crate::waits::segment(name));
        Ok(self
            .send_retrying(|| self.request(reqwest::Method::POST, &path))
            .await?
            .1)
    }

    /// Deletes a schedule; the workflows it started stay.
    pub async fn delete_schedule(&self, name: &str) -> Result<(), ClientError> {
        let path = format!("/schedules/{}", crate::waits::segment(name));
        let response = self.request(reqwest::Method::DELETE, &path).send().await?;
        let status = response.status().as_u16();
        if status >= 400 {
            let text = response.text().await?;
            let message = serde_json::from_str::<crate::wire::ErrorBody>(&text)
                .map(|body| body.error)
                .unwrap_or(text);
            return Err(ClientError::Api { status, message });
        }
        Ok(())
    }

    /// Fires a schedule now; returns the workflow id of the firing.
    pub async fn trigger_schedule(&self, name: &str) -> Result<Vec<String>, ClientError> {
        let path = format!("/schedules/{}/trigger", crate::waits::segment(name));
        let (_, fired): (u16, Fired) = self
            .send(self.request(reqwest::Method::POST, &path))
            .await?;
        Ok(fired.workflow_ids)
    }

    /// Fires every time of a schedule in `[from, to)` (ms since the epoch) that has not fired;
    /// returns the workflow ids of all of them.
    pub async fn backfill_schedule(
        &self,
        name: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<String>, ClientError> {
        let path = format!("/schedules/{}/backfill", crate::waits::segment(name));
        let body = BackfillBody { from, to };
        let (_, fired): (u16, Fired) = self
            .send_retrying(|| self.request(reqwest::Method::POST, &path).json(&body))
            .await?;
        Ok(fired.workflow_ids)
    }
}
