//! A stateful fake of the GitHub REST API, for tests, benchmarks and offline demos.
//!
//! It keeps users, repositories with a commit graph (each commit carries its file changes, so
//! commits, comparisons and file contents at any ref are computed from it), branches, pull
//! requests (files, commits, reviews, combined status and check runs), issues (created issues are
//! listed, edited ones read back) and comments, and answers repository search. Like GitHub it
//!
//! - checks tokens (`Authorization: Bearer` or `token`): unknown ones get 401
//!   `{"message":"Bad credentials",...}`;
//! - issues GitHub App installation tokens at `POST /app/installations/{id}/access_tokens` for a
//!   JWT whose `iss` is the app id and whose `exp` is in the future (the signature is not checked);
//! - sends `x-ratelimit-limit/remaining/reset/used/resource` on every answer, counting down per
//!   resource (`core`, `search`); a spent budget answers 403 with `x-ratelimit-remaining: 0`;
//! - pages lists with `per_page`/`page` (at most 100) and `Link` headers.
//!
//! Faults (delays, dropped connections, injected statuses) come from the [`crate::FakeServer`]
//! harness. Answers follow the shapes of GitHub's OpenAPI description (a test validates a sample
//! against its schemas).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use integration_testkit::github::{FakeGitHub, router};
//! let github = FakeGitHub::demo();
//! let server = integration_testkit::FakeServer::start(router(github.clone())).await?;
//! // point a GitHub connection at server.base_url() with the token FakeGitHub::TOKEN
//! assert!(github.issue_titles("octocat/hello-world").len() > 0);
//! # Ok(()) }
//! ```

mod json;
mod server;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

pub use server::router;

/// A user (or organisation) of the fake.
#[derive(Debug, Clone)]
pub(crate) struct FakeUser {
    pub(crate) login: String,
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) organization: bool,
}

/// One file change of a commit.
#[derive(Debug, Clone)]
pub(crate) struct FakeFile {
    pub(crate) filename: String,
    pub(crate) status: String,
    pub(crate) additions: u64,
    pub(crate) deletions: u64,
    pub(crate) patch: Option<String>,
    /// The content after the change; `None` when removed.
    pub(crate) content: Option<Vec<u8>>,
    pub(crate) previous_filename: Option<String>,
}

impl FakeFile {
    pub(crate) fn blob_sha(&self) -> String {
        short_hash(self.content.as_deref().unwrap_or(self.filename.as_bytes()))
    }
}

/// A commit of the fake.
#[derive(Debug, Clone)]
pub(crate) struct FakeCommit {
    pub(crate) sha: String,
    pub(crate) seq: u64,
    pub(crate) message: String,
    pub(crate) author_login: Option<String>,
    pub(crate) author_name: String,
    pub(crate) author_email: String,
    pub(crate) date: u64,
    pub(crate) parents: Vec<String>,
    pub(crate) files: Vec<FakeFile>,
}

impl FakeCommit {
    pub(crate) fn tree_sha(&self) -> String {
        short_hash(format!("tree{}", self.sha).as_bytes())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FakeIssue {
    pub(crate) number: u64,
    pub(crate) title: String,
    pub(crate) body: Option<String>,
    pub(crate) state: String,
    /// `completed`, `not_planned`, `duplicate` or `reopened`: why the state last changed.
    pub(crate) state_reason: Option<String>,
    pub(crate) user: String,
    pub(crate) labels: Vec<String>,
    pub(crate) assignees: Vec<String>,
    pub(crate) milestone: Option<u64>,
    pub(crate) created_at: u64,
    pub(crate) updated_at: u64,
    /// When it was closed; `None` while open.
    pub(crate) closed_at: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct FakeComment {
    pub(crate) id: u64,
    pub(crate) user: String,
    pub(crate) body: String,
    pub(crate) created_at: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct FakeReview {
    pub(crate) user: String,
    pub(crate) state: String,
    pub(crate) body: String,
    pub(crate) commit_id: String,
    pub(crate) submitted_at: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct FakePull {
    pub(crate) number: u64,
    pub(crate) title: String,
    pub(crate) body: Option<String>,
    /// `open`, `closed` or `merged`.
    pub(crate) state: String,
    pub(crate) user: String,
    pub(crate) head: String,
    pub(crate) base: String,
    pub(crate) draft: bool,
    pub(crate) mergeable: Option<bool>,
    pub(crate) mergeable_state: String,
    pub(crate) labels: Vec<String>,
    /// Logins assigned (through the issue endpoints, as on GitHub).
    pub(crate) assignees: Vec<String>,
    /// The milestone's number.
    pub(crate) milestone: Option<u64>,
    pub(crate) requested_reviewers: Vec<String>,
    pub(crate) reviews: Vec<FakeReview>,
    pub(crate) created_at: u64,
    pub(crate) updated_at: u64,
}

impl FakePull {
    /// The pull request as GitHub's issue endpoints show it: every pull request is also an issue
    /// with the same number (`closed` when merged; closed at its last change).
    pub(crate) fn as_issue(&self) -> FakeIssue {
        let open = self.state == "open";
        FakeIssue {
            number: self.number,
            title: self.title.clone(),
            body: self.body.clone(),
            state: if open { "open" } else { "closed" }.to_owned(),
            state_reason: None,
            user: self.user.clone(),
            labels: self.labels.clone(),
            assignees: self.assignees.clone(),
            milestone: self.milestone,
            created_at: self.created_at,
            updated_at: self.updated_at,
            closed_at: (!open).then_some(self.updated_at),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FakeStatus {
    pub(crate) context: String,
    pub(crate) state: String,
    pub(crate) description: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct FakeCheck {
    pub(crate) name: String,
    pub(crate) status: String,
    pub(crate) conclusion: Option<String>,
}

/// A repository of the fake.
#[derive(Debug, Clone)]
pub(crate) struct FakeRepo {
    pub(crate) id: u64,
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) homepage: Option<String>,
    pub(crate) private: bool,
    pub(crate) archived: bool,
    pub(crate) default_branch: String,
    pub(crate) language: Option<String>,
    pub(crate) languages: Vec<(String, u64)>,
    pub(crate) topics: Vec<String>,
    pub(crate) license: Option<String>,
    pub(crate) stars: u64,
    pub(crate) forks: u64,
    pub(crate) size_kb: u64,
    pub(crate) created_at: u64,
    pub(crate) pushed_at: u64,
    pub(crate) commits: BTreeMap<String, FakeCommit>,
    pub(crate) branches: BTreeMap<String, String>,
    pub(crate) pulls: Vec<FakePull>,
    pub(crate) issues: Vec<FakeIssue>,
    pub(crate) comments: BTreeMap<u64, Vec<FakeComment>>,
    pub(crate) milestones: Vec<(u64, String)>,
    pub(crate) statuses: BTreeMap<String, Vec<FakeStatus>>,
    pub(crate) checks: BTreeMap<String, Vec<FakeCheck>>,
    pub(crate) next_number: u64,
}

impl FakeRepo {
    pub(crate) fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    pub(crate) fn open_issues(&self) -> usize {
        self.issues.iter().filter(|i| i.state == "open").count()
            + self.pulls.iter().filter(|p| p.state == "open").count()
    }

    /// A branch name, a full sha or a unique prefix of at least 4 characters.
    pub(crate) fn resolve(&self, git_ref: &str) -> Option<String> {
        let git_ref = git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref);
        if let Some(sha) = self.branches.get(git_ref) {
            return Some(sha.clone());
        }
        if self.commits.contains_key(git_ref) {
            return Some(git_ref.to_owned());
        }
        if git_ref.len() < 4 {
            return None;
        }
        let mut matches = self.commits.keys().filter(|s| s.starts_with(git_ref));
        match (matches.next(), matches.next()) {
            (Some(one), None) => Some(one.clone()),
            _ => None,
        }
    }

    /// Every commit reachable from `sha`, newest first.
    pub(crate) fn history(&self, sha: &str) -> Vec<&FakeCommit> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![sha.to_owned()];
        let mut out = Vec::new();
        while let Some(s) = stack.pop() {
            if !seen.insert(s.clone()) {
                continue;
            }
            if let Some(c) = self.commits.get(&s) {
                out.push(c);
                stack.extend(c.parents.iter().cloned());
            }
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.seq));
        out
    }

    /// The files at `sha`: every change of its history replayed oldest first.
    pub(crate) fn tree(&self, sha: &str) -> BTreeMap<String, Vec<u8>> {
        let mut tree = BTreeMap::new();
        for c in self.history(sha).into_iter().rev() {
            for f in &c.files {
                if let Some(prev) = &f.previous_filename {
                    tree.remove(prev);
                }
                match &f.content {
                    Some(bytes) => tree.insert(f.filename.clone(), bytes.clone()),
                    None => tree.remove(&f.filename),
                };
            }
        }
        tree
    }

    /// `base...head`: (merge base, commits in head not in base (oldest first), behind count).
    pub(crate) fn compare(&self, base: &str, head: &str) -> (Option<String>, Vec<&FakeCommit>, usize) {
        let base_history = self.history(base);
        let head_history = self.history(head);
        let base_set: BTreeSet<&str> = base_history.iter().map(|c| c.sha.as_str()).collect();
        let head_set: BTreeSet<&str> = head_history.iter().map(|c| c.sha.as_str()).collect();
        let merge_base =
            head_history.iter().find(|c| base_set.contains(c.sha.as_str())).map(|c| c.sha.clone());
        let mut ahead: Vec<&FakeCommit> =
            head_history.iter().copied().filter(|c| !base_set.contains(c.sha.as_str())).collect();
        ahead.reverse();
        let behind = base_history.iter().filter(|c| !head_set.contains(c.sha.as_str())).count();
        (merge_base, ahead, behind)
    }
}

/// The change a seeded commit makes to one file.
#[derive(Debug, Clone)]
pub struct FileChange {
    path: String,
    content: Option<Vec<u8>>,
    renamed_from: Option<String>,
}

impl FileChange {
    /// Create or overwrite `path` with `content`.
    pub fn write(path: &str, content: impl Into<Vec<u8>>) -> Self {
        Self { path: path.to_owned(), content: Some(content.into()), renamed_from: None }
    }

    /// Remove `path`.
    pub fn remove(path: &str) -> Self {
        Self { path: path.to_owned(), content: None, renamed_from: None }
    }

    /// Move `from` to `to` with new content.
    pub fn rename(from: &str, to: &str, content: impl Into<Vec<u8>>) -> Self {
        Self { path: to.to_owned(), content: Some(content.into()), renamed_from: Some(from.to_owned()) }
    }
}

/// A commit to add with [`FakeGitHub::commit`].
#[derive(Debug, Clone)]
pub struct CommitSeed {
    message: String,
    author: Option<String>,
    changes: Vec<FileChange>,
}

impl CommitSeed {
    /// A commit with a message, authored by the repository owner.
    pub fn new(message: &str) -> Self {
        Self { message: message.to_owned(), author: None, changes: Vec::new() }
    }

    /// The author's login (a user of the fake).
    pub fn author(mut self, login: &str) -> Self {
        self.author = Some(login.to_owned());
        self
    }

    /// Add a file change.
    pub fn change(mut self, change: FileChange) -> Self {
        self.changes.push(change);
        self
    }

    /// Create or overwrite a file.
    pub fn write(self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.change(FileChange::write(path, content))
    }
}

/// A repository to add with [`FakeGitHub::add_repo`].
#[derive(Debug, Clone)]
pub struct RepoSeed {
    owner: String,
    name: String,
    description: Option<String>,
    language: Option<String>,
    topics: Vec<String>,
    stars: u64,
    forks: u64,
    private: bool,
}

impl RepoSeed {
    /// A public repository `owner/name` (the owner is created if unknown).
    pub fn new(owner: &str, name: &str) -> Self {
        Self {
            owner: owner.to_owned(),
            name: name.to_owned(),
            description: None,
            language: None,
            topics: Vec::new(),
            stars: 0,
            forks: 0,
            private: false,
        }
    }

    /// Set the description.
    pub fn description(mut self, text: &str) -> Self {
        self.description = Some(text.to_owned());
        self
    }

    /// Set the primary language.
    pub fn language(mut self, language: &str) -> Self {
        self.language = Some(language.to_owned());
        self
    }

    /// Set the topics.
    pub fn topics(mut self, topics: &[&str]) -> Self {
        self.topics = topics.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    /// Set the star and fork counts.
    pub fn stars(mut self, stars: u64, forks: u64) -> Self {
        self.stars = stars;
        self.forks = forks;
        self
    }

    /// Make it private.
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    pub(crate) reset: u64,
    pub(crate) window: u64,
}

impl Bucket {
    fn new(limit: u64, window: u64) -> Self {
        Self { limit, remaining: limit, reset: now() + window, window }
    }

    /// Refill when the window is over.
    pub(crate) fn refresh(&mut self, now: u64) {
        if now >= self.reset {
            self.remaining = self.limit;
            self.reset = now + self.window;
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct InstallationToken {
    pub(crate) installation: u64,
    pub(crate) expires_at: u64,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) users: BTreeMap<String, FakeUser>,
    pub(crate) tokens: BTreeMap<String, String>,
    pub(crate) repos: BTreeMap<String, FakeRepo>,
    /// installation id -> (app id, account login)
    pub(crate) installations: BTreeMap<u64, (u64, String)>,
    pub(crate) installation_tokens: BTreeMap<String, InstallationToken>,
    pub(crate) installation_token_lifetime: u64,
    pub(crate) buckets: BTreeMap<String, Bucket>,
    pub(crate) next_id: u64,
    pub(crate) clock: u64,
}

impl State {
    pub(crate) fn user(&self, login: &str) -> FakeUser {
        self.users.get(login).cloned().unwrap_or_else(|| FakeUser {
            login: login.to_owned(),
            id: 1,
            name: login.to_owned(),
            email: format!("{login}@users.noreply.example"),
            organization: false,
        })
    }

    fn ensure_user(&mut self, login: &str) {
        if !self.users.contains_key(login) {
            self.next_id += 1;
            let id = self.next_id;
            self.users.insert(
                login.to_owned(),
                FakeUser {
                    login: login.to_owned(),
                    id,
                    name: login.to_owned(),
                    email: format!("{login}@example.com"),
                    organization: false,
                },
            );
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 60;
        self.clock
    }
}

/// The fake GitHub: shared state behind the router. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct FakeGitHub {
    pub(crate) state: Arc<Mutex<State>>,
}

impl Default for FakeGitHub {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeGitHub {
    /// The personal access token of `octocat` in the demo data.
    pub const TOKEN: &'static str = "ghp_fakeOctocatToken0000000000000000000";
    /// The login the demo token authenticates as.
    pub const LOGIN: &'static str = "octocat";
    /// The GitHub App id of the demo data.
    pub const APP_ID: u64 = 4242;
    /// The installation id of the demo app (installed on `octocat`).
    pub const INSTALLATION_ID: u64 = 77;
    /// The demo repository with commits, a branch, a pull request and issues.
    pub const REPO: &'static str = "octocat/hello-world";
    /// A demo repository with 130 commits and 120 issues, for paging.
    pub const BIG_REPO: &'static str = "octocat/big-history";

    /// An empty fake: no users, tokens or repositories; 5000 core and 30 search calls per hour.
    pub fn new() -> Self {
        let mut buckets = BTreeMap::new();
        buckets.insert("core".to_owned(), Bucket::new(5000, 3600));
        buckets.insert("search".to_owned(), Bucket::new(30, 60));
        Self {
            state: Arc::new(Mutex::new(State {
                users: BTreeMap::new(),
                tokens: BTreeMap::new(),
                repos: BTreeMap::new(),
                installations: BTreeMap::new(),
                installation_tokens: BTreeMap::new(),
                installation_token_lifetime: 3600,
                buckets,
                next_id: 100,
                clock: 1_700_000_000,
            })),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a user.
    pub fn add_user(&self, login: &str, name: &str) -> &Self {
        let mut s = self.lock();
        s.ensure_user(login);
        if let Some(u) = s.users.get_mut(login) {
            u.name = name.to_owned();
        }
        self
    }

    /// Accept `token` as a personal access token of `login` (created if unknown).
    pub fn add_token(&self, token: &str, login: &str) -> &Self {
        let mut s = self.lock();
        s.ensure_user(login);
        s.tokens.insert(token.to_owned(), login.to_owned());
        self
    }

    /// Register a GitHub App installation: JWTs with `iss = app_id` may mint tokens for it.
    pub fn add_installation(&self, app_id: u64, installation_id: u64, account: &str) -> &Self {
        let mut s = self.lock();
        s.ensure_user(account);
        s.installations.insert(installation_id, (app_id, account.to_owned()));
        self
    }

    /// How long minted installation tokens live (default 3600 s).
    pub fn set_installation_token_lifetime(&self, seconds: u64) {
        self.lock().installation_token_lifetime = seconds;
    }

    /// Installation tokens minted so far.
    pub fn installation_tokens_issued(&self) -> usize {
        self.lock().installation_tokens.len()
    }

    /// Add an empty repository (no commits; the first commit creates its branch).
    pub fn add_repo(&self, seed: RepoSeed) -> &Self {
        {
            let mut s = self.lock();
            s.ensure_user(&seed.owner);
            s.next_id += 1;
            let id = s.next_id;
            let created = s.tick();
            let full = format!("{}/{}", seed.owner, seed.name);
            let languages = seed.language.iter().map(|l| (l.clone(), 10_000)).collect();
            s.repos.insert(
                full,
                FakeRepo {
                    id,
                    owner: seed.owner,
                    name: seed.name,
                    description: seed.description,
                    homepage: None,
                    private: seed.private,
                    archived: false,
                    default_branch: "main".to_owned(),
                    language: seed.language,
                    languages,
                    topics: seed.topics,
                    license: Some("MIT".to_owned()),
                    stars: seed.stars,
                    forks: seed.forks,
                    size_kb: 100,
                    created_at: created,
                    pushed_at: created,
                    commits: BTreeMap::new(),
                    branches: BTreeMap::new(),
                    pulls: Vec::new(),
                    issues: Vec::new(),
                    comments: BTreeMap::new(),
                    milestones: Vec::new(),
                    statuses: BTreeMap::new(),
                    checks: BTreeMap::new(),
                    next_number: 1,
                },
            );
        }
        self
    }

    /// Set a repository's language byte counts (`GET /repos/{o}/{r}/languages`).
    pub fn set_languages(&self, repo: &str, languages: &[(&str, u64)]) {
        if let Some(r) = self.lock().repos.get_mut(repo) {
            r.languages = languages.iter().map(|(l, n)| ((*l).to_owned(), *n)).collect();
        }
    }

    /// Add a commit on top of `branch` (created from nothing if absent); returns its sha.
    pub fn commit(&self, repo: &str, branch: &str, seed: CommitSeed) -> String {
        let mut s = self.lock();
        let date = s.tick();
        s.next_id += 1;
        let seq = s.next_id;
        let author = seed.author.clone();
        if let Some(a) = &author {
            s.ensure_user(a);
        }
        let author_user = author.as_deref().map(|a| s.user(a));
        let Some(r) = s.repos.get_mut(repo) else { return String::new() };
        let parent = r.branches.get(branch).cloned();
        let before = parent.as_deref().map(|p| r.tree(p)).unwrap_or_default();
        let files = seed
            .changes
            .iter()
            .map(|c| {
                let old = c.renamed_from.as_ref().or(Some(&c.path)).and_then(|p| before.get(p));
                file_change(c, old.map(Vec::as_slice))
            })
            .collect();
        let sha = long_hash(format!("{repo}{branch}{seq}{}", seed.message).as_bytes());
        let (name, email) = match &author_user {
            Some(u) => (u.name.clone(), u.email.clone()),
            None => (r.owner.clone(), format!("{}@example.com", r.owner)),
        };
        r.commits.insert(
            sha.clone(),
            FakeCommit {
                sha: sha.clone(),
                seq,
                message: seed.message,
                author_login: author.or_else(|| Some(r.owner.clone())),
                author_name: name,
                author_email: email,
                date,
                parents: parent.into_iter().collect(),
                files,
            },
        );
        r.branches.insert(branch.to_owned(), sha.clone());
        r.pushed_at = date;
        sha
    }

    /// Create `branch` at the head of `from`.
    pub fn create_branch(&self, repo: &str, branch: &str, from: &str) {
        if let Some(r) = self.lock().repos.get_mut(repo)
            && let Some(sha) = r.resolve(from)
        {
            r.branches.insert(branch.to_owned(), sha);
        }
    }

    /// Open a pull request from `head` into `base` by `user`; returns its number.
    pub fn add_pull(&self, repo: &str, title: &str, head: &str, base: &str, user: &str) -> u64 {
        let mut s = self.lock();
        s.ensure_user(user);
        let at = s.tick();
        let Some(r) = s.repos.get_mut(repo) else { return 0 };
        let number = r.next_number;
        r.next_number += 1;
        r.pulls.push(FakePull {
            number,
            title: title.to_owned(),
            body: Some(format!("{title}\n\nPlease review.")),
            state: "open".to_owned(),
            user: user.to_owned(),
            head: head.to_owned(),
            base: base.to_owned(),
            draft: false,
            mergeable: Some(true),
            mergeable_state: "clean".to_owned(),
            labels: Vec::new(),
            assignees: Vec::new(),
            milestone: None,
            requested_reviewers: Vec::new(),
            reviews: Vec::new(),
            created_at: at,
            updated_at: at,
        });
        number
    }

    /// Set a pull request's state (`open`, `closed`, `merged`) and mergeability.
    pub fn set_pull_state(
        &self,
        repo: &str,
        number: u64,
        state: &str,
        mergeable: Option<bool>,
        mergeable_state: &str,
    ) {
        if let Some(p) =
            self.lock().repos.get_mut(repo).and_then(|r| r.pulls.iter_mut().find(|p| p.number == number))
        {
            p.state = state.to_owned();
            p.mergeable = mergeable;
            p.mergeable_state = mergeable_state.to_owned();
        }
    }

    /// Ask `login` for a review of a pull request.
    pub fn request_review(&self, repo: &str, number: u64, login: &str) {
        let mut s = self.lock();
        s.ensure_user(login);
        if let Some(p) = s.repos.get_mut(repo).and_then(|r| r.pulls.iter_mut().find(|p| p.number == number)) {
            p.requested_reviewers.push(login.to_owned());
        }
    }

    /// Add a review (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`) to a pull request.
    pub fn add_review(&self, repo: &str, number: u64, login: &str, state: &str, body: &str) {
        let mut s = self.lock();
        s.ensure_user(login);
        let at = s.tick();
        let Some(r) = s.repos.get_mut(repo) else { return };
        let head_sha =
            r.pulls.iter().find(|p| p.number == number).and_then(|p| r.resolve(&p.head)).unwrap_or_default();
        if let Some(p) = r.pulls.iter_mut().find(|p| p.number == number) {
            p.reviews.push(FakeReview {
                user: login.to_owned(),
                state: state.to_owned(),
                body: body.to_owned(),
                commit_id: head_sha,
                submitted_at: at,
            });
        }
    }

    /// Add a commit status (`success`, `failure`, `pending`, `error`) to the commit `git_ref` names.
    pub fn add_status(&self, repo: &str, git_ref: &str, context: &str, state: &str) {
        if let Some(r) = self.lock().repos.get_mut(repo)
            && let Some(sha) = r.resolve(git_ref)
        {
            r.statuses.entry(sha).or_default().push(FakeStatus {
                context: context.to_owned(),
                state: state.to_owned(),
                description: Some(format!("{context}: {state}")),
            });
        }
    }

    /// Add a check run (`status`: `queued`, `in_progress`, `completed`; `conclusion` when completed).
    pub fn add_check(&self, repo: &str, git_ref: &str, name: &str, status: &str, conclusion: Option<&str>) {
        if let Some(r) = self.lock().repos.get_mut(repo)
            && let Some(sha) = r.resolve(git_ref)
        {
            r.checks.entry(sha).or_default().push(FakeCheck {
                name: name.to_owned(),
                status: status.to_owned(),
                conclusion: conclusion.map(str::to_owned),
            });
        }
    }

    /// Add a milestone; returns its number.
    pub fn add_milestone(&self, repo: &str, title: &str) -> u64 {
        let mut s = self.lock();
        let Some(r) = s.repos.get_mut(repo) else { return 0 };
        let number = r.milestones.len() as u64 + 1;
        r.milestones.push((number, title.to_owned()));
        number
    }

    /// Open an issue by `user` with `labels`; returns its number.
    pub fn add_issue(&self, repo: &str, title: &str, user: &str, labels: &[&str]) -> u64 {
        let mut s = self.lock();
        s.ensure_user(user);
        let at = s.tick();
        let Some(r) = s.repos.get_mut(repo) else { return 0 };
        let number = r.next_number;
        r.next_number += 1;
        r.issues.push(FakeIssue {
            number,
            title: title.to_owned(),
            body: Some(format!("Details of: {title}")),
            state: "open".to_owned(),
            state_reason: None,
            user: user.to_owned(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            assignees: Vec::new(),
            milestone: None,
            created_at: at,
            updated_at: at,
            closed_at: None,
        });
        number
    }

    /// Close an issue (as `completed`).
    pub fn close_issue(&self, repo: &str, number: u64) {
        if let Some(i) =
            self.lock().repos.get_mut(repo).and_then(|r| r.issues.iter_mut().find(|i| i.number == number))
        {
            i.state = "closed".to_owned();
            i.state_reason = Some("completed".to_owned());
            i.closed_at = Some(i.updated_at);
        }
    }

    /// The titles of a repository's issues, in creation order.
    pub fn issue_titles(&self, repo: &str) -> Vec<String> {
        self.lock()
            .repos
            .get(repo)
            .map(|r| r.issues.iter().map(|i| i.title.clone()).collect())
            .unwrap_or_default()
    }

    /// An issue's labels, assignees and milestone number.
    pub fn issue_fields(&self, repo: &str, number: u64) -> Option<(Vec<String>, Vec<String>, Option<u64>)> {
        let s = self.lock();
        let r = s.repos.get(repo)?;
        match r.issues.iter().find(|i| i.number == number) {
            Some(i) => Some((i.labels.clone(), i.assignees.clone(), i.milestone)),
            None => r
                .pulls
                .iter()
                .find(|p| p.number == number)
                .map(|p| (p.labels.clone(), p.assignees.clone(), p.milestone)),
        }
    }

    /// The bodies of the comments on an issue or pull request.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<String> {
        self.lock()
            .repos
            .get(repo)
            .and_then(|r| r.comments.get(&number))
            .map(|c| c.iter().map(|c| c.body.clone()).collect())
            .unwrap_or_default()
    }

    /// Set a rate-limit resource (`core`, `search`): `limit` calls per `window_seconds`, full now.
    pub fn set_rate_limit(&self, resource: &str, limit: u64, window_seconds: u64) {
        self.lock().buckets.insert(resource.to_owned(), Bucket::new(limit, window_seconds));
    }

    /// Spend a resource's budget: the next calls answer 403 until `reset_in_seconds` from now.
    pub fn exhaust_rate_limit(&self, resource: &str, reset_in_seconds: u64) {
        let mut s = self.lock();
        let bucket = s.buckets.entry(resource.to_owned()).or_insert_with(|| Bucket::new(5000, 3600));
        bucket.remaining = 0;
        bucket.reset = now() + reset_in_seconds;
    }

    /// The calls left of a resource.
    pub fn rate_remaining(&self, resource: &str) -> Option<u64> {
        self.lock().buckets.get(resource).map(|b| b.remaining)
    }

    /// Demo data: `octocat` (token [`Self::TOKEN`]) and friends, [`Self::REPO`] with history, a
    /// feature branch, pull request #1 (reviews, statuses, checks) and issues, [`Self::BIG_REPO`]
    /// with 130 commits and 120 issues, a few more repositories for search, and the GitHub App
    /// [`Self::APP_ID`] installed as [`Self::INSTALLATION_ID`].
    pub fn demo() -> Self {
        let gh = Self::new();
        gh.add_user("octocat", "The Octocat").add_user("hubot", "Hubot").add_user("monalisa", "Mona Lisa");
        gh.add_token(Self::TOKEN, Self::LOGIN);
        gh.add_installation(Self::APP_ID, Self::INSTALLATION_ID, Self::LOGIN);

        let repo = Self::REPO;
        gh.add_repo(
            RepoSeed::new("octocat", "hello-world")
                .description("My first repository on GitHub, in Rust")
                .language("Rust")
                .topics(&["rust", "demo", "hello"])
                .stars(1500, 120),
        );
        gh.set_languages(repo, &[("Rust", 48_213), ("Shell", 1_204), ("Dockerfile", 310)]);
        gh.commit(
            repo,
            "main",
            CommitSeed::new("Initial commit")
                .write("README.md", "# Hello World\n\nA demo repository.\n")
                .write("Cargo.toml", "[package]\nname = \"hello\"\nversion = \"0.1.0\"\n")
                .write("src/main.rs", "fn main() {\n    println!(\"Hello, world!\");\n}\n"),
        );
        gh.commit(
            repo,
            "main",
            CommitSeed::new("Add greeting module")
                .author("hubot")
                .write(
                    "src/greet.rs",
                    "pub fn greet(name: &str) -> String {\n    format!(\"Hello, {name}!\")\n}\n",
                )
                .write(
                    "src/main.rs",
                    "mod greet;\n\nfn main() {\n    println!(\"{}\", greet::greet(\"world\"));\n}\n",
                ),
        );
        gh.commit(
            repo,
            "main",
            CommitSeed::new("Add CI script and logo")
                .write("scripts/ci.sh", "#!/bin/sh\nset -e\ncargo test\n")
                .write(
                    "assets/logo.png",
                    vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0xff],
                ),
        );
        gh.create_branch(repo, "feature/shout", "main");
        gh.commit(
            repo,
            "feature/shout",
            CommitSeed::new("Shout the greeting")
                .author("monalisa")
                .write(
                    "src/greet.rs",
                    "pub fn greet(name: &str) -> String {\n    format!(\"HELLO, {}!\", name.to_uppercase())\n}\n",
                )
                .write("tests/greet.rs", "#[test]\nfn shouts() {\n    assert!(true);\n}\n"),
        );
        gh.commit(
            repo,
            "feature/shout",
            CommitSeed::new("Document shouting")
                .author("monalisa")
                .write("README.md", "# Hello World\n\nA demo repository.\n\nNow it shouts.\n")
                .write("docs/usage.md", "Run `cargo run`.\n"),
        );
        let pr = gh.add_pull(repo, "Shout the greeting", "feature/shout", "main", "monalisa");
        gh.request_review(repo, pr, "octocat");
        gh.add_review(repo, pr, "hubot", "CHANGES_REQUESTED", "Please add a test");
        gh.add_review(repo, pr, "hubot", "APPROVED", "Looks good now");
        gh.add_review(repo, pr, "octocat", "COMMENTED", "Nice");
        gh.add_status(repo, "feature/shout", "ci/build", "success");
        gh.add_status(repo, "feature/shout", "ci/lint", "success");
        gh.add_check(repo, "feature/shout", "test", "completed", Some("success"));
        gh.add_check(repo, "feature/shout", "coverage", "in_progress", None);
        gh.add_milestone(repo, "v1.0");
        gh.add_issue(repo, "Greeting is too quiet", "hubot", &["bug"]);
        gh.add_issue(repo, "Support other languages", "monalisa", &["enhancement", "good first issue"]);
        let closed = gh.add_issue(repo, "Typo in README", "octocat", &["docs"]);
        gh.close_issue(repo, closed);

        let big = Self::BIG_REPO;
        gh.add_repo(
            RepoSeed::new("octocat", "big-history").description("Many commits and issues").language("Go"),
        );
        for i in 0..130 {
            let dir = ["cmd", "pkg/api", "pkg/store", "docs"][i % 4];
            let author = ["octocat", "hubot", "monalisa"][i % 3];
            let ext = if dir == "docs" { "md" } else { "go" };
            gh.commit(
                big,
                "main",
                CommitSeed::new(&format!("Change {i}"))
                    .author(author)
                    .write(&format!("{dir}/file{}.{ext}", i % 7), format!("package x\n// change {i}\n")),
            );
        }
        for i in 0..120 {
            gh.add_issue(big, &format!("Issue number {i}"), "hubot", if i % 2 == 0 { &["bug"] } else { &[] });
        }

        gh.add_repo(
            RepoSeed::new("octocat", "spoon-knife")
                .description("This repo is for demonstration purposes only")
                .language("HTML")
                .stars(12000, 140000),
        );
        gh.add_repo(
            RepoSeed::new("rust-lang", "rust")
                .description("Empowering everyone to build reliable and efficient software")
                .language("Rust")
                .topics(&["rust", "compiler", "language"])
                .stars(98000, 12000),
        );
        gh.add_repo(
            RepoSeed::new("tokio-rs", "tokio")
                .description("A runtime for writing reliable asynchronous applications with Rust")
                .language("Rust")
                .topics(&["rust", "async", "networking"])
                .stars(27000, 2500),
        );
        for r in ["octocat/spoon-knife", "rust-lang/rust", "tokio-rs/tokio"] {
            gh.commit(r, "main", CommitSeed::new("Initial commit").write("README.md", format!("# {r}\n")));
        }
        gh
    }
}

/// The record of one seeded file change, with line counts and a unified-diff patch.
fn file_change(change: &FileChange, old: Option<&[u8]>) -> FakeFile {
    let new = change.content.as_deref();
    let binary = |b: Option<&[u8]>| b.is_some_and(|b| b.contains(&0) || std::str::from_utf8(b).is_err());
    let lines = |b: Option<&[u8]>| -> Vec<String> {
        b.map(|b| String::from_utf8_lossy(b).lines().map(str::to_owned).collect()).unwrap_or_default()
    };
    let status = match (&change.renamed_from, old, new) {
        (Some(_), _, _) => "renamed",
        (None, None, Some(_)) => "added",
        (None, _, None) => "removed",
        (None, Some(_), Some(_)) => "modified",
    };
    let (old_lines, new_lines) = (lines(old), lines(new));
    let removed: Vec<&String> = old_lines.iter().filter(|l| !new_lines.contains(l)).collect();
    let added: Vec<&String> = new_lines.iter().filter(|l| !old_lines.contains(l)).collect();
    let patch = if binary(old) || binary(new) {
        None
    } else {
        let mut p = format!("@@ -1,{} +1,{} @@", old_lines.len(), new_lines.len());
        for l in &removed {
            p.push_str(&format!("\n-{l}"));
        }
        for l in &added {
            p.push_str(&format!("\n+{l}"));
        }
        Some(p)
    };
    FakeFile {
        filename: change.path.clone(),
        status: status.to_owned(),
        additions: added.len() as u64,
        deletions: removed.len() as u64,
        patch,
        content: change.content.clone(),
        previous_filename: change.renamed_from.clone(),
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// An ISO 8601 UTC timestamp (`2011-01-26T19:01:12Z`) of epoch seconds.
pub(crate) fn iso(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let rem = epoch % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Parse the `YYYY-MM-DDTHH:MM:SSZ` form [`iso`] writes (and a bare date) back to epoch seconds.
pub(crate) fn parse_iso(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T').unwrap_or((text, "00:00:00Z"));
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let mut t = time.split(':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next().flatten().unwrap_or(0), t.next().flatten().unwrap_or(0));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days).ok().map(|d| d * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// A 40-hex-digit id (FNV-1a based; stable, not cryptographic).
pub(crate) fn long_hash(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(40);
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..3u8 {
        let mut h = seed ^ u64::from(round);
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
        seed = h;
    }
    out.truncate(40);
    out
}

pub(crate) fn short_hash(bytes: &[u8]) -> String {
    long_hash(bytes)
}
