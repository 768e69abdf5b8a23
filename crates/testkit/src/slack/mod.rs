//! A stateful fake of the Slack Web API, for tests, benchmarks and offline demos.
//!
//! It keeps a workspace (team, bot user, users, channels with members, topics and archived flags,
//! messages with threads and reactions, DMs), checks bot tokens (`Authorization: Bearer`, or a
//! `token` form/JSON/query field) and their scopes (a token can be seeded without a scope: the
//! answer is `missing_scope` naming the `needed` one), answers Slack's `200 {"ok": false, "error":
//! ..}` errors, pages `conversations.list` / `users.list` / `conversations.history` with cursors,
//! and can rate-limit any method per window (HTTP 429 with `Retry-After`). Parameters are read from
//! the query string, form bodies and JSON bodies alike. Answers follow the shapes of Slack's Web
//! API description (a test validates them against its schemas). Faults (429, delays, dropped
//! connections) also come from the [`FakeServer`](crate::FakeServer) harness.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use integration_testkit::slack::{FakeSlack, router};
//! let slack = FakeSlack::demo();
//! let server = integration_testkit::FakeServer::start(router(slack.clone())).await?;
//! // point a Slack connection at format!("{}/api/", server.base_url()) with FakeSlack::BOT_TOKEN
//! assert!(slack.messages_in("#general").is_empty());
//! # Ok(()) }
//! ```

mod server;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub use server::router;

/// Every scope the fake checks; a token seeded with `None` scopes has them all.
pub const ALL_SCOPES: [&str; 9] = [
    "chat:write",
    "reactions:write",
    "channels:read",
    "channels:history",
    "channels:manage",
    "im:write",
    "users:read",
    "users:read.email",
    "groups:read",
];

/// A message as the fake stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage {
    /// The message timestamp (its id in the channel).
    pub ts: String,
    /// The author (the bot user for messages sent through the API).
    pub user: String,
    /// The text, if any.
    pub text: Option<String>,
    /// The blocks, if any.
    pub blocks: Option<Value>,
    /// The thread, for replies.
    pub thread_ts: Option<String>,
    /// Reaction names with the users who reacted.
    pub reactions: BTreeMap<String, Vec<String>>,
    /// Whether links were to be unfurled (`unfurl_links`).
    pub unfurl_links: Option<bool>,
}

/// An ephemeral message (shown to one user, not kept in the history).
#[derive(Debug, Clone, PartialEq)]
pub struct EphemeralMessage {
    /// The channel.
    pub channel: String,
    /// The user who sees it.
    pub user: String,
    /// The text.
    pub text: Option<String>,
    /// Its `message_ts`.
    pub ts: String,
}

#[derive(Debug, Clone)]
pub(crate) struct FakeChannel {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) is_private: bool,
    pub(crate) is_general: bool,
    pub(crate) is_archived: bool,
    pub(crate) is_im: bool,
    /// For DMs: the other user.
    pub(crate) im_user: Option<String>,
    pub(crate) created: i64,
    pub(crate) creator: String,
    pub(crate) members: BTreeSet<String>,
    pub(crate) topic: (String, String, i64),
    pub(crate) purpose: String,
    pub(crate) messages: Vec<SlackMessage>,
}

#[derive(Debug, Clone)]
pub(crate) struct FakeUser {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) real_name: String,
    pub(crate) email: Option<String>,
    pub(crate) is_bot: bool,
    pub(crate) is_admin: bool,
    pub(crate) deleted: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// `None`: every scope.
    pub(crate) scopes: Option<BTreeSet<String>>,
    pub(crate) inactive: bool,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) team_id: String,
    pub(crate) team: String,
    pub(crate) bot_user: String,
    pub(crate) bot_id: String,
    pub(crate) tokens: HashMap<String, Token>,
    pub(crate) users: Vec<FakeUser>,
    pub(crate) channels: Vec<FakeChannel>,
    pub(crate) ephemeral: Vec<EphemeralMessage>,
    pub(crate) limits: HashMap<String, (usize, Duration)>,
    pub(crate) hits: HashMap<String, VecDeque<Instant>>,
    pub(crate) max_page: usize,
    pub(crate) next_id: u64,
    pub(crate) ts_base: u64,
    pub(crate) ts_counter: u64,
    pub(crate) calls: Vec<String>,
}

impl State {
    fn new() -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1_700_000_000);
        let mut state = Self {
            team_id: "T0FAKE0001".into(),
            team: "Fake Workspace".into(),
            bot_user: String::new(),
            bot_id: "B0FAKE0001".into(),
            tokens: HashMap::new(),
            users: Vec::new(),
            channels: Vec::new(),
            ephemeral: Vec::new(),
            limits: HashMap::new(),
            hits: HashMap::new(),
            max_page: 1000,
            next_id: 1,
            ts_base: now,
            ts_counter: 0,
            calls: Vec::new(),
        };
        state.bot_user = state.add_user("integrations-bot", "Integrations Bot", None, true);
        state.tokens.insert(FakeSlack::BOT_TOKEN.to_owned(), Token { scopes: None, inactive: false });
        state
    }

    pub(crate) fn id(&mut self, prefix: char) -> String {
        let id = format!("{prefix}0{:08}", self.next_id);
        self.next_id += 1;
        id
    }

    /// A fresh message timestamp: `seconds.micros`, strictly increasing.
    pub(crate) fn ts(&mut self) -> String {
        self.ts_counter += 1;
        let secs = self.ts_base + self.ts_counter / 1_000_000;
        format!("{secs}.{:06}", self.ts_counter % 1_000_000)
    }

    pub(crate) fn now(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }

    fn add_user(&mut self, name: &str, real_name: &str, email: Option<&str>, is_bot: bool) -> String {
        let id = self.id('U');
        self.users.push(FakeUser {
            id: id.clone(),
            name: name.to_owned(),
            real_name: real_name.to_owned(),
            email: email.map(str::to_owned),
            is_bot,
            is_admin: false,
            deleted: false,
        });
        id
    }

    fn add_channel(&mut self, name: &str, is_private: bool, members: &[String]) -> String {
        let id = self.id('C');
        let created = self.now();
        let mut set: BTreeSet<String> = members.iter().cloned().collect();
        set.insert(self.bot_user.clone());
        self.channels.push(FakeChannel {
            id: id.clone(),
            name: name.to_owned(),
            is_private,
            is_general: false,
            is_archived: false,
            is_im: false,
            im_user: None,
            created,
            creator: self.bot_user.clone(),
            members: set,
            topic: (String::new(), String::new(), 0),
            purpose: String::new(),
            messages: Vec::new(),
        });
        id
    }

    pub(crate) fn user(&self, id: &str) -> Option<&FakeUser> {
        self.users.iter().find(|u| u.id == id)
    }

    /// A channel by id, `#name` or `name`.
    pub(crate) fn channel_index(&self, key: &str) -> Option<usize> {
        let name = key.trim_start_matches('#');
        self.channels.iter().position(|c| c.id == key || (!c.is_im && c.name == name))
    }

    /// The DM channel with `user`, created when missing.
    pub(crate) fn open_im(&mut self, user: &str) -> (usize, bool) {
        if let Some(i) = self.channels.iter().position(|c| c.is_im && c.im_user.as_deref() == Some(user)) {
            return (i, true);
        }
        let id = self.id('D');
        let created = self.now();
        let members = [user.to_owned(), self.bot_user.clone()].into_iter().collect();
        self.channels.push(FakeChannel {
            id,
            name: String::new(),
            is_private: true,
            is_general: false,
            is_archived: false,
            is_im: true,
            im_user: Some(user.to_owned()),
            created,
            creator: self.bot_user.clone(),
            members,
            topic: (String::new(), String::new(), 0),
            purpose: String::new(),
            messages: Vec::new(),
        });
        (self.channels.len() - 1, false)
    }
}

/// The fake's shared state. Cheap to clone; clones share the workspace.
#[derive(Debug, Clone)]
pub struct FakeSlack {
    pub(crate) state: Arc<Mutex<State>>,
}

impl Default for FakeSlack {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeSlack {
    /// The bot token seeded in every fake, with every scope.
    pub const BOT_TOKEN: &'static str = "xoxb-fake-bot-token";

    /// An empty workspace: the team, the bot user and [`Self::BOT_TOKEN`].
    pub fn new() -> Self {
        Self { state: Arc::new(Mutex::new(State::new())) }
    }

    /// A seeded workspace: users `alice`, `bob`, `carol` (`{name}@example.com`) and the bot;
    /// channels `#general` (everyone), `#random`, `#engineering` (alice, bob), the private
    /// `#leads` (alice) and the archived `#old-project`.
    pub fn demo() -> Self {
        let fake = Self::new();
        let alice = fake.add_user("alice", "Alice Archer", "alice@example.com");
        let bob = fake.add_user("bob", "Bob Builder", "bob@example.com");
        let carol = fake.add_user("carol", "Carol Chen", "carol@example.com");
        {
            let mut s = fake.lock();
            let everyone = [alice.clone(), bob.clone(), carol];
            let general = s.add_channel("general", false, &everyone);
            if let Some(c) = s.channels.iter_mut().find(|c| c.id == general) {
                c.is_general = true;
                c.purpose = "Company-wide announcements".into();
            }
            s.add_channel("random", false, &[]);
            s.add_channel("engineering", false, &[alice.clone(), bob]);
            s.add_channel("leads", true, &[alice]);
            let old = s.add_channel("old-project", false, &[]);
            if let Some(c) = s.channels.iter_mut().find(|c| c.id == old) {
                c.is_archived = true;
            }
        }
        fake
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a token; `scopes: None` grants every scope, `Some(&[..])` only those listed.
    pub fn add_token(&self, token: &str, scopes: Option<&[&str]>) {
        let scopes = scopes.map(|s| s.iter().map(|x| (*x).to_owned()).collect());
        self.lock().tokens.insert(token.to_owned(), Token { scopes, inactive: false });
    }

    /// Mark a token's account deactivated (`account_inactive`).
    pub fn deactivate_token(&self, token: &str) {
        if let Some(t) = self.lock().tokens.get_mut(token) {
            t.inactive = true;
        }
    }

    /// Add a user; returns its id.
    pub fn add_user(&self, name: &str, real_name: &str, email: &str) -> String {
        self.lock().add_user(name, real_name, Some(email), false)
    }

    /// Add a channel (the bot is a member); returns its id.
    pub fn add_channel(&self, name: &str, is_private: bool) -> String {
        self.lock().add_channel(name, is_private, &[])
    }

    /// Rate-limit `method`: at most `max_calls` per `window`, then HTTP 429 with `Retry-After`.
    pub fn set_rate_limit(&self, method: &str, max_calls: usize, window: Duration) {
        self.lock().limits.insert(method.to_owned(), (max_calls, window));
    }

    /// Serve at most `n` items per page whatever `limit` asks (Slack may answer short pages).
    pub fn set_max_page(&self, n: usize) {
        self.lock().max_page = n.max(1);
    }

    /// The bot user's id.
    pub fn bot_user_id(&self) -> String {
        self.lock().bot_user.clone()
    }

    /// The id of the channel with this name (with or without `#`).
    pub fn channel_id(&self, name: &str) -> Option<String> {
        let s = self.lock();
        s.channel_index(name).map(|i| s.channels[i].id.clone())
    }

    /// The id of the user with this handle.
    pub fn user_id(&self, name: &str) -> Option<String> {
        self.lock().users.iter().find(|u| u.name == name).map(|u| u.id.clone())
    }

    /// The messages of a channel (id or name), in the order they were posted, thread replies
    /// included.
    pub fn messages_in(&self, channel: &str) -> Vec<SlackMessage> {
        let s = self.lock();
        s.channel_index(channel).map(|i| s.channels[i].messages.clone()).unwrap_or_default()
    }

    /// The DM channel with a user, if one was opened.
    pub fn dm_channel(&self, user_id: &str) -> Option<String> {
        let s = self.lock();
        s.channels.iter().find(|c| c.is_im && c.im_user.as_deref() == Some(user_id)).map(|c| c.id.clone())
    }

    /// The ephemeral messages shown so far.
    pub fn ephemeral_messages(&self) -> Vec<EphemeralMessage> {
        self.lock().ephemeral.clone()
    }

    /// The members of a channel (id or name).
    pub fn members_of(&self, channel: &str) -> Vec<String> {
        let s = self.lock();
        s.channel_index(channel).map(|i| s.channels[i].members.iter().cloned().collect()).unwrap_or_default()
    }

    /// The topic of a channel (id or name).
    pub fn topic_of(&self, channel: &str) -> Option<String> {
        let s = self.lock();
        s.channel_index(channel).map(|i| s.channels[i].topic.0.clone())
    }

    /// Whether a channel (id or name) is archived.
    pub fn is_archived(&self, channel: &str) -> Option<bool> {
        let s = self.lock();
        s.channel_index(channel).map(|i| s.channels[i].is_archived)
    }

    /// The Web API methods called so far, in order (answered calls only, rate-limited included).
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }
}

/// The demo fake's router (`integrations-fakes --slack`).
pub fn demo_router() -> axum::Router {
    router(FakeSlack::demo())
}
