//! The identity store: users, groups, access keys, managed policies and temporary (STS)
//! sessions, as the IAM API changes them ([`State`]), and the compiled view every request
//! is authorised against ([`Directory`]), rebuilt once per change.
//!
//! `State` is plain data, serialised as JSON into the storage's `iam` configuration
//! document (atomic, durable, `0600`); its operations validate like AWS IAM does and
//! answer AWS's error codes ([`IamError`]). Secret keys live only here and in the
//! directory; neither type prints them (`Debug` is not derived on anything holding one).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::policy::Policy;

/// The account every identity belongs to (ARNs read `arn:aws:iam::000000000000:user/NAME`).
pub const ACCOUNT_ID: &str = "000000000000";

/// Access keys a user may have at once (AWS: 2).
pub const MAX_KEYS_PER_USER: usize = 2;
/// Managed policies attached to one user or group (AWS default quota: 10).
pub const MAX_ATTACHED: usize = 10;
/// Groups one user may be in (AWS: 10).
pub const MAX_GROUPS_PER_USER: usize = 10;
/// Policy sizes, in characters other than white space, as AWS counts them: all inline
/// policies of a user together, of a group together, and one managed policy.
pub const USER_INLINE_LIMIT: usize = 2048;
pub const GROUP_INLINE_LIMIT: usize = 5120;
pub const MANAGED_POLICY_LIMIT: usize = 6144;

/// An IAM API error, with AWS's code and HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    AccessDenied(String),
}

impl IamError {
    /// AWS's error code.
    pub fn code(&self) -> &'static str {
        match self {
            IamError::NoSuchEntity(_) => "NoSuchEntity",
            IamError::EntityAlreadyExists(_) => "EntityAlreadyExists",
            IamError::MalformedPolicyDocument(_) => "MalformedPolicyDocument",
            IamError::LimitExceeded(_) => "LimitExceeded",
            IamError::DeleteConflict(_) => "DeleteConflict",
            IamError::Validation(_) => "ValidationError",
            IamError::InvalidInput(_) => "InvalidInput",
            IamError::AccessDenied(_) => "AccessDenied",
        }
    }

    /// The HTTP status AWS answers with.
    pub fn status(&self) -> u16 {
        match self {
            IamError::NoSuchEntity(_) => 404,
            IamError::EntityAlreadyExists(_) | IamError::LimitExceeded(_) | IamError::DeleteConflict(_) => 409,
            IamError::AccessDenied(_) => 403,
            _ => 400,
        }
    }
}

type Result<T> = std::result::Result<T, IamError>;

/// An IAM user.
#[derive(Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub path: String,
    /// Unix seconds.
    pub created: i64,
    /// Inline policies by name.
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// Attached managed policies, by name.
    #[serde(default)]
    pub attached: BTreeSet<String>,
    #[serde(default)]
    pub groups: BTreeSet<String>,
}

/// An IAM group.
#[derive(Clone, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub path: String,
    pub created: i64,
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: BTreeSet<String>,
}

/// An IAM role: assumed through STS AssumeRole by the principals its trust policy allows;
/// its sessions carry its inline and attached policies.
#[derive(Clone, Serialize, Deserialize)]
pub struct Role {
    pub id: String,
    pub path: String,
    pub created: i64,
    /// The trust policy (`AssumeRolePolicyDocument`), a resource policy naming principals.
    pub trust: String,
    #[serde(default)]
    pub description: String,
    /// Longest session, seconds (AWS: 3600 to 43200, default 3600).
    pub max_session: i64,
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: BTreeSet<String>,
}

/// Inline policies of one role together, in characters other than white space (AWS).
pub const ROLE_INLINE_LIMIT: usize = 10_240;
/// A trust policy's size (AWS default quota).
pub const TRUST_POLICY_LIMIT: usize = 2048;

/// A customer-managed policy (one version, `v1`).
#[derive(Clone, Serialize, Deserialize)]
pub struct ManagedPolicy {
    pub id: String,
    pub path: String,
    pub created: i64,
    pub document: String,
    #[serde(default)]
    pub description: String,
}

/// A user's long-term access key.
#[derive(Clone, Serialize, Deserialize)]
pub struct AccessKey {
    pub user: String,
    pub secret: String,
    pub active: bool,
    pub created: i64,
}

/// Temporary credentials from STS AssumeRole: the permissions of the role assumed
/// (`role`), or, for the compatibility form that names no existing role, of the identity
/// that asked (`parent`: a user, or `None` for root); narrowed by an optional session
/// policy either way.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    pub parent: Option<String>,
    pub secret: String,
    pub token: String,
    /// Unix seconds.
    pub expires: i64,
    pub policy: Option<String>,
    pub role_arn: String,
    pub session_name: String,
    pub id: String,
    /// The role assumed, by name.
    #[serde(default)]
    pub role: Option<String>,
}

/// An account besides the default one (the account of the root key given at start):
/// its own root key, the buckets it creates, and an owner identity (canonical id, display
/// name, e-mail) that ACL grants and listings name. IAM users, groups and policies live
/// in the default account only (other accounts have their root key).
#[derive(Clone, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub email: String,
    /// 64 hex digits, as S3's canonical user ids.
    pub canonical_id: String,
    pub access_key: String,
    pub secret: String,
    pub created: i64,
}

/// Everything the IAM API manages.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Accounts besides the default one, by 12-digit account id.
    #[serde(default)]
    pub accounts: BTreeMap<String, Account>,
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    #[serde(default)]
    pub groups: BTreeMap<String, Group>,
    #[serde(default)]
    pub policies: BTreeMap<String, ManagedPolicy>,
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
    #[serde(default)]
    pub keys: BTreeMap<String, AccessKey>,
    #[serde(default)]
    pub sessions: BTreeMap<String, Session>,
}

/// Random upper-case letters and digits, as AWS's ids use.
pub fn random_id(prefix: &str, len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + len);
    s.push_str(prefix);
    for _ in 0..len {
        s.push(CHARS[rng.random_range(0..CHARS.len())] as char);
    }
    s
}

/// A 40-character secret (letters, digits, `+`, `/`), 238 random bits.
pub fn random_secret(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..len).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `UserName`, `GroupName`, `PolicyName`: 1..=max of `[\w+=,.@-]`.
pub fn check_name(what: &str, name: &str, max: usize) -> Result<()> {
    let ok = (1..=max).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'=' | b',' | b'.' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(IamError::Validation(format!(
            "The specified value for {what} is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_- (1 to {max} characters)"
        )))
    }
}

/// `Path`: `/` or `/a/b/`.
pub fn check_path(path: &str) -> Result<()> {
    let ok = path.starts_with('/') && path.ends_with('/') && path.len() <= 512 && path.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(IamError::Validation(
            "The specified value for path is invalid. It must begin and end with / and contain only printable ASCII characters".into(),
        ))
    }
}

fn policy_size(doc: &str) -> usize {
    doc.chars().filter(|c| !c.is_whitespace()).count()
}

/// Validate an identity policy document (no Principal), as IAM's MalformedPolicyDocument.
pub fn check_identity_policy(doc: &str) -> Result<Policy> {
    Policy::parse(doc, false).map_err(|e| IamError::MalformedPolicyDocument(e.0))
}

/// Validate a role's trust policy: a resource policy (it names principals) of at most
/// 2048 characters.
pub fn check_trust_policy(doc: &str) -> Result<Policy> {
    if policy_size(doc) > TRUST_POLICY_LIMIT {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_LIMIT}"
        )));
    }
    Policy::parse_trust(doc).map_err(|e| IamError::MalformedPolicyDocument(e.0))
}

fn check_max_session(v: Option<i64>) -> Result<i64> {
    match v {
        None => Ok(3600),
        Some(s) if (3600..=43_200).contains(&s) => Ok(s),
        Some(_) => Err(IamError::Validation(
            "MaxSessionDuration must be between 3600 and 43200 seconds".into(),
        )),
    }
}

/// Attach managed policy `name` to a user's or group's set, within AWS's quota.
fn attach(attached: &mut BTreeSet<String>, name: String, quota: &str) -> Result<()> {
    if !attached.contains(&name) && attached.len() >= MAX_ATTACHED {
        return Err(IamError::LimitExceeded(format!("Cannot exceed quota for {quota}: {MAX_ATTACHED}")));
    }
    attached.insert(name);
    Ok(())
}

fn detach(attached: &mut BTreeSet<String>, name: &str, arn: &str) -> Result<()> {
    if !attached.remove(name) {
        return Err(IamError::NoSuchEntity(format!("Policy {arn} was not found.")));
    }
    Ok(())
}

/// Put inline policy `name` of a user or group (`owner`), keeping all its inline policies
/// together within `limit` characters (white space not counted, as AWS counts).
fn put_inline(inline: &mut BTreeMap<String, String>, name: &str, doc: &str, limit: usize, owner: &str) -> Result<()> {
    check_name("policyName", name, 128)?;
    check_identity_policy(doc)?;
    let others: usize = inline.iter().filter(|(n, _)| *n != name).map(|(_, d)| policy_size(d)).sum();
    if others + policy_size(doc) > limit {
        return Err(IamError::LimitExceeded(format!(
            "Maximum policy size of {limit} bytes exceeded for {owner}"
        )));
    }
    inline.insert(name.into(), doc.into());
    Ok(())
}

/// `arn:aws:iam::ACCOUNT:user/PATH/NAME`.
pub fn user_arn(path: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:user{path}{name}")
}
pub fn group_arn(path: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:group{path}{name}")
}
pub fn policy_arn(path: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:policy{path}{name}")
}
pub fn role_arn(path: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:role{path}{name}")
}
pub const ROOT_ARN: &str = "arn:aws:iam::000000000000:root";
/// The default account's owner identity, as buckets and objects report it.
pub const DEFAULT_CANONICAL_ID: &str = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a";
pub const DEFAULT_DISPLAY_NAME: &str = "quarry";

/// Accounts a deployment may hold besides the default one.
pub const MAX_ACCOUNTS: usize = 1000;

/// `arn:aws:iam::ACCOUNT:root`.
pub fn account_root_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

impl State {
    pub fn user(&self, name: &str) -> Result<&User> {
        self.users
            .get(name)
            .ok_or_else(|| IamError::NoSuchEntity(format!("The user with name {name} cannot be found.")))
    }
    fn user_mut(&mut self, name: &str) -> Result<&mut User> {
        self.users
            .get_mut(name)
            .ok_or_else(|| IamError::NoSuchEntity(format!("The user with name {name} cannot be found.")))
    }
    pub fn group(&self, name: &str) -> Result<&Group> {
        self.groups
            .get(name)
            .ok_or_else(|| IamError::NoSuchEntity(format!("The group with name {name} cannot be found.")))
    }
    fn group_mut(&mut self, name: &str) -> Result<&mut Group> {
        self.groups
            .get_mut(name)
            .ok_or_else(|| IamError::NoSuchEntity(format!("The group with name {name} cannot be found.")))
    }

    /// The managed policy an ARN names (one of ours: `arn:aws:iam::ACCOUNT:policy/...`).
    pub fn policy_by_arn(&self, arn: &str) -> Result<(&String, &ManagedPolicy)> {
        let missing = || IamError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."));
        let rest = arn.strip_prefix(&format!("arn:aws:iam::{ACCOUNT_ID}:policy")).ok_or_else(missing)?;
        let name = rest.rsplit('/').next().unwrap_or("");
        let (name, p) = self.policies.get_key_value(name).ok_or_else(missing)?;
        if policy_arn(&p.path, name) != arn {
            return Err(missing());
        }
        Ok((name, p))
    }

    /// Create an account with a fresh id, canonical id and root key.
    pub fn create_account(&mut self, name: &str, email: &str) -> Result<(String, &Account)> {
        check_name("accountName", name, 50)?;
        let email_ok = email.is_empty()
            || (email.len() <= 254
                && email.split_once('@').is_some_and(|(u, d)| !u.is_empty() && !d.is_empty())
                && !email.contains(char::is_whitespace));
        if !email_ok {
            return Err(IamError::Validation(format!("The e-mail address {email:?} is not valid")));
        }
        if self.accounts.len() >= MAX_ACCOUNTS {
            return Err(IamError::LimitExceeded(format!("Cannot exceed quota for Accounts: {MAX_ACCOUNTS}")));
        }
        let taken = self
            .accounts
            .values()
            .any(|a| a.name.eq_ignore_ascii_case(name) || (!email.is_empty() && a.email.eq_ignore_ascii_case(email)));
        if taken || name.eq_ignore_ascii_case(DEFAULT_DISPLAY_NAME) {
            return Err(IamError::EntityAlreadyExists(format!(
                "An account named {name} or with e-mail {email} already exists."
            )));
        }
        let mut rng = rand::rng();
        let id = loop {
            let id: String = (0..12).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect();
            if id != ACCOUNT_ID && !self.accounts.contains_key(&id) {
                break id;
            }
        };
        let canonical_id: String = (0..64).map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)])).collect();
        let access_key = loop {
            let k = random_id("AKIA", 16);
            if !self.keys.contains_key(&k) && !self.accounts.values().any(|a| a.access_key == k) {
                break k;
            }
        };
        let account = Account {
            name: name.into(),
            email: email.into(),
            canonical_id,
            access_key,
            secret: random_secret(40),
            created: now(),
        };
        Ok((id.clone(), self.accounts.entry(id).or_insert(account)))
    }

    /// Remove an account (the caller has checked that it owns no bucket).
    pub fn delete_account(&mut self, id: &str) -> Result<()> {
        if self.accounts.remove(id).is_none() {
            return Err(IamError::NoSuchEntity(format!("The account {id} cannot be found.")));
        }
        Ok(())
    }

    pub fn role(&self, name: &str) -> Result<&Role> {
        self.roles
            .get(name)
            .ok_or_else(|| IamError::NoSuchEntity(format!("The role with name {name} cannot be found.")))
    }
    fn role_mut(&mut self, name: &str) -> Result<&mut Role> {
        self.roles
            .get_mut(name)
            .ok_or_else(|| IamError::NoSuchEntity(format!("The role with name {name} cannot be found.")))
    }

    /// The role an ARN names (`arn:aws:iam::ACCOUNT:role/PATH/NAME`), if it exists.
    pub fn role_by_arn(&self, arn: &str) -> Option<(&String, &Role)> {
        let name = arn.strip_prefix(&format!("arn:aws:iam::{ACCOUNT_ID}:role"))?.rsplit('/').next()?;
        let (name, r) = self.roles.get_key_value(name)?;
        (role_arn(&r.path, name) == arn).then_some((name, r))
    }

    pub fn create_role(&mut self, name: &str, path: &str, trust: &str, description: &str, max_session: Option<i64>) -> Result<&Role> {
        check_name("roleName", name, 64)?;
        check_path(path)?;
        check_trust_policy(trust)?;
        let max_session = check_max_session(max_session)?;
        if description.chars().count() > 1000 {
            return Err(IamError::Validation("The description must be at most 1000 characters".into()));
        }
        if self.roles.keys().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(IamError::EntityAlreadyExists(format!("Role with name {name} already exists.")));
        }
        let role = Role {
            id: random_id("AROA", 17),
            path: path.into(),
            created: now(),
            trust: trust.into(),
            description: description.into(),
            max_session,
            inline: BTreeMap::new(),
            attached: BTreeSet::new(),
        };
        Ok(self.roles.entry(name.into()).or_insert(role))
    }

    pub fn update_role(&mut self, name: &str, description: Option<&str>, max_session: Option<i64>) -> Result<()> {
        let max = max_session.map(|m| check_max_session(Some(m))).transpose()?;
        let r = self.role_mut(name)?;
        if let Some(d) = description {
            r.description = d.into();
        }
        if let Some(m) = max {
            r.max_session = m;
        }
        Ok(())
    }

    pub fn update_trust_policy(&mut self, name: &str, trust: &str) -> Result<()> {
        check_trust_policy(trust)?;
        self.role_mut(name)?.trust = trust.into();
        Ok(())
    }

    /// AWS refuses to delete a role that still has policies.
    pub fn delete_role(&mut self, name: &str) -> Result<()> {
        let r = self.role(name)?;
        if !r.inline.is_empty() || !r.attached.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove policies from role first.".into(),
            ));
        }
        self.roles.remove(name);
        self.sessions.retain(|_, s| s.role.as_deref() != Some(name));
        Ok(())
    }

    pub fn put_role_policy(&mut self, role: &str, name: &str, doc: &str) -> Result<()> {
        put_inline(
            &mut self.role_mut(role)?.inline,
            name,
            doc,
            ROLE_INLINE_LIMIT,
            &format!("role {role}"),
        )
    }

    pub fn delete_role_policy(&mut self, role: &str, name: &str) -> Result<()> {
        if self.role_mut(role)?.inline.remove(name).is_none() {
            return Err(IamError::NoSuchEntity(format!("The role policy with name {name} cannot be found.")));
        }
        Ok(())
    }

    pub fn attach_role_policy(&mut self, role: &str, arn: &str) -> Result<()> {
        let name = self.policy_by_arn(arn)?.0.clone();
        attach(&mut self.role_mut(role)?.attached, name, "PoliciesPerRole")
    }

    pub fn detach_role_policy(&mut self, role: &str, arn: &str) -> Result<()> {
        let name = self.policy_by_arn(arn)?.0.clone();
        detach(&mut self.role_mut(role)?.attached, &name, arn)
    }

    pub fn create_user(&mut self, name: &str, path: &str) -> Result<&User> {
        check_name("userName", name, 64)?;
        check_path(path)?;
        // IAM names are unique case-insensitively.
        if self.users.keys().any(|u| u.eq_ignore_ascii_case(name)) {
            return Err(IamError::EntityAlreadyExists(format!("User with name {name} already exists.")));
        }
        let user = User {
            id: random_id("AIDA", 17),
            path: path.into(),
            created: now(),
            inline: BTreeMap::new(),
            attached: BTreeSet::new(),
            groups: BTreeSet::new(),
        };
        Ok(self.users.entry(name.into()).or_insert(user))
    }

    /// AWS refuses to delete a user who still has keys, policies or groups.
    pub fn delete_user(&mut self, name: &str) -> Result<()> {
        let u = self.user(name)?;
        let has_keys = self.keys.values().any(|k| k.user == name);
        if has_keys || !u.inline.is_empty() || !u.attached.is_empty() || !u.groups.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove access keys, policies and group memberships first.".into(),
            ));
        }
        self.users.remove(name);
        self.sessions.retain(|_, s| s.parent.as_deref() != Some(name));
        Ok(())
    }

    pub fn create_access_key(&mut self, user: &str) -> Result<(String, AccessKey)> {
        self.user(user)?;
        if self.keys.values().filter(|k| k.user == user).count() >= MAX_KEYS_PER_USER {
            return Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}"
            )));
        }
        let id = loop {
            let id = random_id("AKIA", 16);
            if !self.keys.contains_key(&id) {
                break id;
            }
        };
        let key = AccessKey {
            user: user.into(),
            secret: random_secret(40),
            active: true,
            created: now(),
        };
        self.keys.insert(id.clone(), key.clone());
        Ok((id, key))
    }

    fn key_of_mut(&mut self, user: &str, id: &str) -> Result<&mut AccessKey> {
        self.user(user)?;
        match self.keys.get_mut(id) {
            Some(k) if k.user == user => Ok(k),
            _ => Err(IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found."))),
        }
    }

    pub fn update_access_key(&mut self, user: &str, id: &str, status: &str) -> Result<()> {
        let active = match status {
            "Active" => true,
            "Inactive" => false,
            _ => return Err(IamError::Validation("Status must be Active or Inactive".into())),
        };
        self.key_of_mut(user, id)?.active = active;
        Ok(())
    }

    pub fn delete_access_key(&mut self, user: &str, id: &str) -> Result<()> {
        self.key_of_mut(user, id)?;
        self.keys.remove(id);
        Ok(())
    }

    pub fn put_user_policy(&mut self, user: &str, name: &str, doc: &str) -> Result<()> {
        put_inline(
            &mut self.user_mut(user)?.inline,
            name,
            doc,
            USER_INLINE_LIMIT,
            &format!("user {user}"),
        )
    }

    pub fn delete_user_policy(&mut self, user: &str, name: &str) -> Result<()> {
        if self.user_mut(user)?.inline.remove(name).is_none() {
            return Err(IamError::NoSuchEntity(format!("The user policy with name {name} cannot be found.")));
        }
        Ok(())
    }

    pub fn create_group(&mut self, name: &str, path: &str) -> Result<&Group> {
        check_name("groupName", name, 128)?;
        check_path(path)?;
        if self.groups.keys().any(|g| g.eq_ignore_ascii_case(name)) {
            return Err(IamError::EntityAlreadyExists(format!("Group with name {name} already exists.")));
        }
        let g = Group {
            id: random_id("AGPA", 17),
            path: path.into(),
            created: now(),
            inline: BTreeMap::new(),
            attached: BTreeSet::new(),
        };
        Ok(self.groups.entry(name.into()).or_insert(g))
    }

    pub fn delete_group(&mut self, name: &str) -> Result<()> {
        let g = self.group(name)?;
        let has_members = self.users.values().any(|u| u.groups.contains(name));
        if has_members || !g.inline.is_empty() || !g.attached.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove users and policies from group first.".into(),
            ));
        }
        self.groups.remove(name);
        Ok(())
    }

    pub fn add_user_to_group(&mut self, group: &str, user: &str) -> Result<()> {
        self.group(group)?;
        let u = self.user_mut(user)?;
        if !u.groups.contains(group) && u.groups.len() >= MAX_GROUPS_PER_USER {
            return Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}"
            )));
        }
        u.groups.insert(group.into());
        Ok(())
    }

    pub fn remove_user_from_group(&mut self, group: &str, user: &str) -> Result<()> {
        self.group(group)?;
        if !self.user_mut(user)?.groups.remove(group) {
            return Err(IamError::NoSuchEntity(format!("User {user} is not in group {group}.")));
        }
        Ok(())
    }

    pub fn put_group_policy(&mut self, group: &str, name: &str, doc: &str) -> Result<()> {
        put_inline(
            &mut self.group_mut(group)?.inline,
            name,
            doc,
            GROUP_INLINE_LIMIT,
            &format!("group {group}"),
        )
    }

    pub fn delete_group_policy(&mut self, group: &str, name: &str) -> Result<()> {
        if self.group_mut(group)?.inline.remove(name).is_none() {
            return Err(IamError::NoSuchEntity(format!(
                "The group policy with name {name} cannot be found."
            )));
        }
        Ok(())
    }

    pub fn create_policy(&mut self, name: &str, path: &str, doc: &str, description: &str) -> Result<(&String, &ManagedPolicy)> {
        check_name("policyName", name, 128)?;
        check_path(path)?;
        check_identity_policy(doc)?;
        if policy_size(doc) > MANAGED_POLICY_LIMIT {
            return Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for PolicySize: {MANAGED_POLICY_LIMIT}"
            )));
        }
        if self.policies.contains_key(name) {
            return Err(IamError::EntityAlreadyExists(format!(
                "A policy called {name} already exists. Duplicate names are not allowed."
            )));
        }
        let now = now();
        let p = ManagedPolicy {
            id: random_id("ANPA", 17),
            path: path.into(),
            created: now,
            document: doc.into(),
            description: description.into(),
        };
        self.policies.insert(name.into(), p);
        Ok(self.policies.get_key_value(name).expect("just inserted"))
    }

    /// How many users and groups a managed policy is attached to.
    pub fn attachment_count(&self, name: &str) -> usize {
        self.users.values().filter(|u| u.attached.contains(name)).count()
            + self.groups.values().filter(|g| g.attached.contains(name)).count()
            + self.roles.values().filter(|r| r.attached.contains(name)).count()
    }

    pub fn delete_policy(&mut self, arn: &str) -> Result<()> {
        let (name, _) = self.policy_by_arn(arn)?;
        let name = name.clone();
        if self.attachment_count(&name) > 0 {
            return Err(IamError::DeleteConflict("Cannot delete a policy attached to entities.".into()));
        }
        self.policies.remove(&name);
        Ok(())
    }

    pub fn attach_user_policy(&mut self, user: &str, arn: &str) -> Result<()> {
        let name = self.policy_by_arn(arn)?.0.clone();
        attach(&mut self.user_mut(user)?.attached, name, "PoliciesPerUser")
    }

    pub fn detach_user_policy(&mut self, user: &str, arn: &str) -> Result<()> {
        let name = self.policy_by_arn(arn)?.0.clone();
        detach(&mut self.user_mut(user)?.attached, &name, arn)
    }

    pub fn attach_group_policy(&mut self, group: &str, arn: &str) -> Result<()> {
        let name = self.policy_by_arn(arn)?.0.clone();
        attach(&mut self.group_mut(group)?.attached, name, "PoliciesPerGroup")
    }

    pub fn detach_group_policy(&mut self, group: &str, arn: &str) -> Result<()> {
        let name = self.policy_by_arn(arn)?.0.clone();
        detach(&mut self.group_mut(group)?.attached, &name, arn)
    }

    /// Issue temporary credentials for `parent` (a user, or `None` for root).
    pub fn create_session(
        &mut self,
        parent: Option<&str>,
        role: Option<&str>,
        role_arn: &str,
        session_name: &str,
        duration: i64,
        policy: Option<&str>,
    ) -> Result<(String, Session)> {
        if let Some(p) = policy {
            check_identity_policy(p)?;
            if p.len() > 2048 {
                return Err(IamError::Validation("The session policy is longer than 2048 characters".into()));
            }
        }
        self.purge_expired();
        let id = random_id("ASIA", 16);
        let s = Session {
            parent: parent.map(str::to_owned),
            secret: random_secret(40),
            token: random_secret(96),
            expires: now() + duration,
            policy: policy.map(str::to_owned),
            role_arn: role_arn.into(),
            session_name: session_name.into(),
            id: match role.and_then(|r| self.roles.get(r)) {
                Some(r) => r.id.clone(),
                None => random_id("AROA", 17),
            },
            role: role.map(str::to_owned),
        };
        self.sessions.insert(id.clone(), s.clone());
        Ok((id, s))
    }

    /// Forget sessions that have expired.
    pub fn purge_expired(&mut self) {
        let now = now();
        self.sessions.retain(|_, s| s.expires > now);
    }
}

/// Who is asking, and what their identity policies allow.
pub struct Principal {
    /// An account's root user (all permissions on what the account owns).
    pub root: bool,
    pub name: String,
    pub id: String,
    pub arn: String,
    /// The 12-digit account the principal belongs to.
    pub account: String,
    /// The account's owner identity (canonical id, display name).
    pub canonical_id: String,
    pub display_name: String,
    /// Inline, attached, and the groups' inline and attached policies.
    pub policies: Vec<Arc<Policy>>,
}

/// What a temporary credential adds to its parent principal.
pub struct SessionInfo {
    pub token: String,
    pub expires: i64,
    /// Narrows the parent's permissions when set.
    pub policy: Option<Arc<Policy>>,
    pub arn: String,
}

/// One access key as the authoriser sees it.
pub struct Credential {
    pub secret: String,
    pub active: bool,
    pub principal: Arc<Principal>,
    pub session: Option<SessionInfo>,
}

/// The compiled view of [`State`] plus the root key: every policy parsed once.
pub struct Directory {
    pub keys: HashMap<String, Credential>,
    /// Every account, the default one included, by account id.
    pub accounts: HashMap<String, AccountView>,
}

/// An account's owner identity, as ACLs and listings name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountView {
    pub id: String,
    pub canonical_id: String,
    pub display_name: String,
    pub email: String,
}

impl Directory {
    /// The account whose canonical id is `canonical`.
    pub fn account_by_canonical(&self, canonical: &str) -> Option<&AccountView> {
        self.accounts.values().find(|a| a.canonical_id == canonical)
    }

    /// The account registered with e-mail `email` (compared case-insensitively).
    pub fn account_by_email(&self, email: &str) -> Option<&AccountView> {
        self.accounts
            .values()
            .find(|a| !a.email.is_empty() && a.email.eq_ignore_ascii_case(email))
    }

    /// The owner identity of account `id`; an unknown id (an account since removed) is
    /// reported by its id alone.
    pub fn account_or_id(&self, id: &str) -> AccountView {
        self.accounts.get(id).cloned().unwrap_or_else(|| AccountView {
            id: id.to_owned(),
            canonical_id: id.to_owned(),
            display_name: id.to_owned(),
            email: String::new(),
        })
    }
}

impl Directory {
    /// Compile `state`. Stored policies were validated when they were put; one that no
    /// longer parses grants nothing (and is logged).
    pub fn build(state: &State, root_key: &str, root_secret: &str) -> Directory {
        let mut cache: HashMap<String, Option<Arc<Policy>>> = HashMap::new();
        let mut compile = |text: &str| -> Option<Arc<Policy>> {
            cache
                .entry(text.to_owned())
                .or_insert_with(|| match Policy::parse(text, false) {
                    Ok(p) => Some(Arc::new(p)),
                    Err(e) => {
                        tracing::error!(error = %e.0, "a stored identity policy does not parse; it grants nothing");
                        None
                    }
                })
                .clone()
        };
        let root = Arc::new(Principal {
            root: true,
            name: "root".into(),
            id: ACCOUNT_ID.into(),
            arn: ROOT_ARN.into(),
            account: ACCOUNT_ID.into(),
            canonical_id: DEFAULT_CANONICAL_ID.into(),
            display_name: DEFAULT_DISPLAY_NAME.into(),
            policies: Vec::new(),
        });
        let mut accounts = HashMap::new();
        accounts.insert(
            ACCOUNT_ID.to_owned(),
            AccountView {
                id: ACCOUNT_ID.into(),
                canonical_id: DEFAULT_CANONICAL_ID.into(),
                display_name: DEFAULT_DISPLAY_NAME.into(),
                email: String::new(),
            },
        );
        let mut principals: HashMap<&str, Arc<Principal>> = HashMap::new();
        for (name, u) in &state.users {
            let mut texts: Vec<&str> = u.inline.values().map(String::as_str).collect();
            texts.extend(u.attached.iter().filter_map(|p| state.policies.get(p)).map(|p| p.document.as_str()));
            for g in u.groups.iter().filter_map(|g| state.groups.get(g)) {
                texts.extend(g.inline.values().map(String::as_str));
                texts.extend(g.attached.iter().filter_map(|p| state.policies.get(p)).map(|p| p.document.as_str()));
            }
            let policies = texts.into_iter().filter_map(&mut compile).collect();
            principals.insert(
                name,
                Arc::new(Principal {
                    root: false,
                    name: name.clone(),
                    id: u.id.clone(),
                    arn: user_arn(&u.path, name),
                    account: ACCOUNT_ID.into(),
                    canonical_id: DEFAULT_CANONICAL_ID.into(),
                    display_name: DEFAULT_DISPLAY_NAME.into(),
                    policies,
                }),
            );
        }
        let mut keys = HashMap::new();
        for (id, k) in &state.keys {
            let Some(p) = principals.get(k.user.as_str()) else { continue };
            keys.insert(
                id.clone(),
                Credential {
                    secret: k.secret.clone(),
                    active: k.active,
                    principal: p.clone(),
                    session: None,
                },
            );
        }
        let mut roles: HashMap<&str, Arc<Principal>> = HashMap::new();
        for (name, r) in &state.roles {
            let mut texts: Vec<&str> = r.inline.values().map(String::as_str).collect();
            texts.extend(r.attached.iter().filter_map(|p| state.policies.get(p)).map(|p| p.document.as_str()));
            let policies = texts.into_iter().filter_map(&mut compile).collect();
            roles.insert(
                name,
                Arc::new(Principal {
                    root: false,
                    name: name.clone(),
                    id: r.id.clone(),
                    arn: role_arn(&r.path, name),
                    account: ACCOUNT_ID.into(),
                    canonical_id: DEFAULT_CANONICAL_ID.into(),
                    display_name: DEFAULT_DISPLAY_NAME.into(),
                    policies,
                }),
            );
        }
        for (id, s) in &state.sessions {
            let parent = match (&s.role, &s.parent) {
                (Some(r), _) => match roles.get(r.as_str()) {
                    Some(p) => p.clone(),
                    None => continue,
                },
                (None, None) => root.clone(),
                (None, Some(u)) => match principals.get(u.as_str()) {
                    Some(p) => p.clone(),
                    None => continue,
                },
            };
            let policy = match &s.policy {
                Some(text) => match compile(text) {
                    Some(p) => Some(p),
                    None => continue,
                },
                None => None,
            };
            let role = s.role_arn.rsplit('/').next().unwrap_or("session");
            keys.insert(
                id.clone(),
                Credential {
                    secret: s.secret.clone(),
                    active: true,
                    principal: parent.clone(),
                    session: Some(SessionInfo {
                        token: s.token.clone(),
                        expires: s.expires,
                        policy,
                        // GetSessionToken's credentials act as their user (no role ARN).
                        arn: if s.role_arn.is_empty() {
                            parent.arn.clone()
                        } else {
                            format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/{}", s.session_name)
                        },
                    }),
                },
            );
        }
        for (id, a) in &state.accounts {
            accounts.insert(
                id.clone(),
                AccountView {
                    id: id.clone(),
                    canonical_id: a.canonical_id.clone(),
                    display_name: a.name.clone(),
                    email: a.email.clone(),
                },
            );
            let principal = Arc::new(Principal {
                root: true,
                name: "root".into(),
                id: id.clone(),
                arn: account_root_arn(id),
                account: id.clone(),
                canonical_id: a.canonical_id.clone(),
                display_name: a.name.clone(),
                policies: Vec::new(),
            });
            keys.insert(
                a.access_key.clone(),
                Credential {
                    secret: a.secret.clone(),
                    active: true,
                    principal,
                    session: None,
                },
            );
        }
        // Last, so that no stored key can ever stand in for the root key.
        keys.insert(
            root_key.to_owned(),
            Credential {
                secret: root_secret.to_owned(),
                active: true,
                principal: root,
                session: None,
            },
        );
        Directory { keys, accounts }
    }
}

#[cfg(test)]
mod tests;
