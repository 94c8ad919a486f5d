//! Messages waiting for room in the MQTT client's request queue, at most one per topic.
//!
//! The adapter never awaits a publish (that would stop it reading Home Assistant's commands
//! while the broker is slow, and the client's event loop, blocked handing those commands
//! over, would stop draining the queue: each side waiting on the other). It offers each
//! message with `try_publish` and keeps what does not fit here. Only the newest message of a
//! topic matters (every one is a retained state, availability or config), so a newer one
//! replaces the one waiting: the outbox never holds more than one message per topic, and
//! the topics are those of the site and its bays (`site.max_bays`), which bounds it.

use std::collections::{BTreeMap, HashMap};

use super::publisher::Publish;

/// Waiting messages, oldest first, one per topic.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Queue position -> topic. Messages put back in front get positions below the first,
    /// new ones above the last, so positions are signed.
    order: BTreeMap<i64, String>,
    /// Topic -> its queue position and newest message.
    latest: HashMap<String, (i64, Publish)>,
    next: i64,
}

impl Outbox {
    /// Queues `message`. A state or availability replacing one still waiting keeps its place
    /// (it must not starve behind newer topics); a discovery config goes to the back, so the
    /// site device stays ahead of the bays that name it as `via_device`.
    pub fn push(&mut self, message: Publish) {
        if let Some((at, waiting)) = self.latest.get_mut(&message.topic) {
            if message.discovery {
                self.order.remove(at);
                *at = self.next;
                self.order.insert(self.next, message.topic.clone());
                self.next += 1;
            }
            *waiting = message;
            return;
        }
        self.order.insert(self.next, message.topic.clone());
        self.latest
            .insert(message.topic.clone(), (self.next, message));
        self.next += 1;
    }

    /// Takes the oldest message.
    pub fn pop(&mut self) -> Option<Publish> {
        let (_, topic) = self.order.pop_first()?;
        self.latest.remove(&topic).map(|(_, message)| message)
    }

    /// Puts a message taken with [`Outbox::pop`] back in front, unless a newer one for its
    /// topic came in meanwhile.
    pub fn unpop(&mut self, message: Publish) {
        if self.latest.contains_key(&message.topic) {
            return;
        }
        let at = if let Some((first, _)) = self.order.first_key_value() {
            first - 1
        } else {
            self.next += 1;
            self.next - 1
        };
        self.order.insert(at, message.topic.clone());
        self.latest.insert(message.topic.clone(), (at, message));
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

impl Extend<Publish> for Outbox {
    fn extend<I: IntoIterator<Item = Publish>>(&mut self, messages: I) {
        for m in messages {
            self.push(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(topic: &str, payload: &str) -> Publish {
        Publish {
            topic: topic.to_owned(),
            payload: payload.to_owned(),
            retain: true,
            discovery: false,
        }
    }

    fn config(topic: &str, payload: &str) -> Publish {
        Publish {
            discovery: true,
            ..state(topic, payload)
        }
    }

    fn drain(outbox: &mut Outbox) -> Vec<(String, String)> {
        std::iter::from_fn(|| outbox.pop())
            .map(|p| (p.topic, p.payload))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(t, p)| ((*t).to_owned(), (*p).to_owned()))
            .collect()
    }

    #[test]
    fn only_the_newest_state_of_a_topic_waits_and_keeps_its_place() {
        let mut outbox = Outbox::default();
        outbox.push(state("a/state", "1"));
        outbox.push(state("b/state", "1"));
        for i in 2..1_000 {
            outbox.push(state("a/state", &i.to_string()));
        }
        assert_eq!(outbox.len(), 2);
        assert_eq!(
            drain(&mut outbox),
            pairs(&[("a/state", "999"), ("b/state", "1")])
        );
        assert!(outbox.is_empty());
    }

    #[test]
    fn a_config_announced_again_goes_behind_the_site_config_announced_after_it() {
        let mut outbox = Outbox::default();
        outbox.push(config("bay/config", "old"));
        outbox.push(config("site/config", "x"));
        outbox.push(config("bay/config", "new"));
        assert_eq!(
            drain(&mut outbox),
            pairs(&[("site/config", "x"), ("bay/config", "new")])
        );
    }

    #[test]
    fn a_message_that_did_not_fit_goes_back_in_front_unless_overtaken() {
        let mut outbox = Outbox::default();
        outbox.push(state("a", "1"));
        outbox.push(state("b", "1"));
        let first = outbox.pop().unwrap_or_else(|| state("none", ""));
        outbox.unpop(first);
        let again = outbox.pop().unwrap_or_else(|| state("none", ""));
        assert_eq!(again.topic, "a");
        outbox.push(state("a", "2"));
        outbox.unpop(again); // "a" = "2" is newer: the old one is not put back
        assert_eq!(drain(&mut outbox), pairs(&[("b", "1"), ("a", "2")]));
    }
}
