//! Messages waiting for room in the MQTT client's request queue, at most one per topic.
//!
//! The adapter never awaits a publish (that would stop it reading Home Assistant's commands
//! while the broker is slow, and the client's event loop, blocked handing those commands
//! over, would stop draining the queue: each side waiting on the other). It offers each
//! message with `try_publish` and keeps what does not fit here. Only the newest message of a
//! topic matters (every one is a retained state, availability or config), so a newer one
//! replaces the one waiting: the outbox never holds more than one message per topic, and
//! the topics are those of the site and its bays (`site.max_bays`), which bounds it.
//!
//! Two lanes, taken in turn: states (with availability) and discovery. Announcing 10,000
//! bays queues 10,000 announcements; the state that answers a command must not wait behind
//! all of them (a state before its config is harmless: it is retained, and Home Assistant
//! reads it when the config makes it subscribe). An announcement waits as the device's name
//! ([`Out::Announce`]) and is written out only when it leaves, so the ~10 kB configs of a
//! whole site never sit here at once.

use std::collections::{BTreeMap, HashMap};

use super::publisher::{Announce, Out};

/// What makes two waiting items one: a message's topic, or the device of an announcement.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Topic(String),
    Announce(Announce),
}

fn key(item: &Out) -> Key {
    match item {
        Out::Message(m) => Key::Topic(m.topic.clone()),
        Out::Announce(device) => Key::Announce(device.clone()),
    }
}

/// 0: states and availability; 1: discovery configs, their removals and announcements
/// still to be written.
fn lane(item: &Out) -> usize {
    match item {
        Out::Message(m) => usize::from(m.discovery),
        Out::Announce(_) => 1,
    }
}

/// Waiting items, one per topic or device, in two lanes, oldest first in each.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Per lane ([`lane`]), queue position -> key. Items put back in front get positions
    /// below the first, new ones above the last, so positions are signed.
    lanes: [BTreeMap<i64, Key>; 2],
    /// Key -> its queue position and newest item.
    latest: HashMap<Key, (i64, Out)>,
    next: i64,
    /// The lane [`Outbox::pop`] looks at first.
    turn: usize,
}

impl Outbox {
    /// Queues `item`. A state or availability replacing one still waiting keeps its place
    /// (it must not starve behind newer topics); discovery goes to the back of its lane, so
    /// the site device stays ahead of the bays that name it as `via_device`.
    pub fn push(&mut self, item: Out) {
        let lane = lane(&item);
        let key = key(&item);
        if let Some((at, waiting)) = self.latest.get_mut(&key) {
            if lane == 1 {
                self.lanes[lane].remove(at);
                *at = self.next;
                self.lanes[lane].insert(self.next, key);
                self.next += 1;
            }
            *waiting = item;
            return;
        }
        self.lanes[lane].insert(self.next, key.clone());
        self.latest.insert(key, (self.next, item));
        self.next += 1;
    }

    /// Takes the oldest item of one lane, the lanes in turn.
    pub fn pop(&mut self) -> Option<Out> {
        for i in 0..self.lanes.len() {
            let l = (self.turn + i) % self.lanes.len();
            if let Some((_, key)) = self.lanes[l].pop_first() {
                self.turn = (l + 1) % self.lanes.len();
                return self.latest.remove(&key).map(|(_, item)| item);
            }
        }
        None
    }

    /// Puts an item taken with [`Outbox::pop`] back in front of its lane (and that lane's
    /// turn first), unless a newer one for its key came in meanwhile.
    pub fn unpop(&mut self, item: Out) {
        let key = key(&item);
        if self.latest.contains_key(&key) {
            return;
        }
        let lane = lane(&item);
        let at = if let Some((first, _)) = self.lanes[lane].first_key_value() {
            first - 1
        } else {
            self.next += 1;
            self.next - 1
        };
        self.turn = lane;
        self.lanes[lane].insert(at, key.clone());
        self.latest.insert(key, (at, item));
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

impl Extend<Out> for Outbox {
    fn extend<I: IntoIterator<Item = Out>>(&mut self, items: I) {
        for item in items {
            self.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::publisher::Publish;

    fn state(topic: &str, payload: &str) -> Out {
        Out::Message(Publish {
            topic: topic.to_owned(),
            payload: payload.to_owned(),
            retain: true,
            discovery: false,
        })
    }

    fn config(topic: &str, payload: &str) -> Out {
        Out::Message(Publish {
            topic: topic.to_owned(),
            payload: payload.to_owned(),
            retain: true,
            discovery: true,
        })
    }

    fn topic(item: Out) -> String {
        match item {
            Out::Message(m) => m.topic,
            Out::Announce(device) => format!("{device:?}"),
        }
    }

    fn drain(outbox: &mut Outbox) -> Vec<(String, String)> {
        std::iter::from_fn(|| outbox.pop())
            .map(|item| match item {
                Out::Message(m) => (m.topic, m.payload),
                Out::Announce(device) => (format!("{device:?}"), String::new()),
            })
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
        assert_eq!(topic(again.clone()), "a");
        outbox.push(state("a", "2"));
        outbox.unpop(again); // "a" = "2" is newer: the old one is not put back
        assert_eq!(drain(&mut outbox), pairs(&[("b", "1"), ("a", "2")]));
    }

    #[test]
    fn a_state_does_not_wait_behind_an_announcement() {
        let mut outbox = Outbox::default();
        for i in 0..1_000 {
            outbox.push(config(&format!("bay{i}/config"), "{}"));
        }
        outbox.push(state("bay7/state", "answer"));
        let first_two: Vec<String> = (0..2).filter_map(|_| outbox.pop()).map(topic).collect();
        assert!(
            first_two.contains(&"bay7/state".to_owned()),
            "{first_two:?}"
        );
        // The configs keep their order.
        let rest: Vec<String> = std::iter::from_fn(|| outbox.pop()).map(topic).collect();
        assert_eq!(rest.len(), 999);
        assert_eq!(rest.first().map(String::as_str), Some("bay1/config"));
        assert_eq!(rest.last().map(String::as_str), Some("bay999/config"));
    }

    #[test]
    fn an_announcement_waits_as_a_name_once_and_keeps_the_lane_order() {
        let mut outbox = Outbox::default();
        let bay = |dev: &str| Out::Announce(Announce::Bay(dev.to_owned()));
        outbox.push(bay("a"));
        outbox.push(Out::Announce(Announce::Site));
        outbox.push(config("x/config", ""));
        outbox.push(bay("a")); // announced again: behind the site, once
        assert_eq!(outbox.len(), 3);
        let order: Vec<String> = std::iter::from_fn(|| outbox.pop()).map(topic).collect();
        assert_eq!(order, ["Site", "x/config", "Bay(\"a\")"]);
    }
}
