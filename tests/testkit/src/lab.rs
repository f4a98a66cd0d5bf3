//! The loopback lab's fixed data: the seeded ManagedClusters and the child
//! cluster's objects, as constants the lab tests use directly, and the files
//! `tests/lab-env/lab.sh up` starts the lab with (PKI, kubeconfigs, manifests), written
//! by the `lab-setup` binary from the same constants.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
use serde_json::{Value, json};

use crate::{Ca, oidc};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;

/// Random bytes for a request token.
fn rand_bytes() -> [u8; 18] {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 18];
    ring::rand::SystemRandom::new().fill(&mut b).expect("random bytes");
    b
}

/// What a seeded ManagedCluster reports in its status, and so how the hub
/// stand-in answers for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reports {
    /// Ready, `status.apiserverURL` = the stand-in's canned child.
    CannedChild,
    /// Ready, `status.apiserverURL` = the real child kube-apiserver.
    RealChild,
    /// `useSocket`, Ready False, no agent: no session (400 "disconnected").
    Disconnected,
    /// Ready, no `status.apiserverURL` (503 on the `direct` route).
    NoUrl,
    /// Ready, `status.apiserverURL` = the canned child, `useSocket` false: its
    /// agent runs without the SocketConnection gate, so it has no session
    /// (500 `failed to find Session for client <id>`).
    NoSocket,
}

impl Seed {
    /// Whether `lab.sh up` starts an agent (`agent-standin`) for it: every
    /// seed but those whose agent is away or never opened a socket.
    pub fn has_agent(&self) -> bool {
        !matches!(self.reports, Reports::Disconnected | Reports::NoSocket)
    }
}

/// One seeded ManagedCluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    pub name: &'static str,
    pub namespace: &'static str,
    /// `spec.clusterId`, also its `clusters.clusternet.io/cluster-id` label.
    pub id: &'static str,
    /// `spec.syncMode`.
    pub sync_mode: &'static str,
    pub reports: Reports,
}

const fn seed(
    name: &'static str,
    namespace: &'static str,
    id: &'static str,
    sync_mode: &'static str,
    reports: Reports,
) -> Seed {
    Seed { name, namespace, id, sync_mode, reports }
}

pub const CHILD_A: Seed =
    seed("child-a", "clusternet-a1b2c", "1b2f7d0a-4c1e-4e6b-9a51-0000000000a1", "Pull", Reports::CannedChild);
pub const CHILD_B: Seed =
    seed("child-b", "clusternet-d3e4f", "2c3e8e1b-5d2f-4f7c-8b62-0000000000b2", "Push", Reports::CannedChild);
/// Two clusters named `dup`, in two namespaces.
pub const DUP_1: Seed =
    seed("dup", "clusternet-g5h6i", "3d4f9f2c-6e3a-4a8d-9c73-0000000000d1", "Dual", Reports::CannedChild);
pub const DUP_2: Seed =
    seed("dup", "clusternet-j7k8l", "4e5a0a3d-7f4b-4b9e-8d84-0000000000d2", "Pull", Reports::CannedChild);
pub const CHILD_OFFLINE: Seed =
    seed("child-offline", "clusternet-m9n0p", "e0000000-0000-4000-8000-000000000401", "Pull", Reports::Disconnected);
pub const CHILD_NOURL: Seed =
    seed("child-nourl", "clusternet-q1r2s", "e0000000-0000-4000-8000-000000000402", "Pull", Reports::NoUrl);
pub const CHILD_REAL: Seed =
    seed("child-real", "clusternet-r3a1l", "7c41d2e3-8f9a-4b0c-9d1e-0000000000c1", "Pull", Reports::RealChild);
/// Its agent runs with SocketConnection=false: no session, `useSocket` false.
pub const CHILD_NOSOCKET: Seed =
    seed("child-nosocket", "clusternet-u7e5p", "e0000000-0000-4000-8000-000000000403", "Pull", Reports::NoSocket);
/// A second registration of the real child, with its own `child-cluster-deployer`
/// Secret: several clusters (and `--all`) with hub-held credentials.
pub const CHILD_REAL_2: Seed =
    seed("child-real-2", "clusternet-r4b2m", "7c41d2e3-8f9a-4b0c-9d1e-0000000000c2", "Pull", Reports::RealChild);
/// The real child, but the agent has not stored its Secret (`child-cluster-deployer` missing).
pub const CHILD_NO_SECRET: Seed =
    seed("child-nosecret", "clusternet-s5c3n", "7c41d2e3-8f9a-4b0c-9d1e-0000000000c3", "Pull", Reports::RealChild);
/// The real child, with a `child-cluster-deployer` Secret whose token is empty.
pub const CHILD_EMPTY_TOKEN: Seed =
    seed("child-emptytoken", "clusternet-t6d4o", "7c41d2e3-8f9a-4b0c-9d1e-0000000000c4", "Pull", Reports::RealChild);

/// Every seeded ManagedCluster, in seeding order.
pub const SEEDS: [Seed; 11] = [
    CHILD_A,
    CHILD_B,
    DUP_1,
    DUP_2,
    CHILD_OFFLINE,
    CHILD_NOURL,
    CHILD_NOSOCKET,
    CHILD_REAL,
    CHILD_REAL_2,
    CHILD_NO_SECRET,
    CHILD_EMPTY_TOKEN,
];

/// A label on the ManagedClusters of the real child (`-l` picks them for `--all`).
pub const REAL_CHILD_LABEL: &str = "lab.clusternet-kubeconfig.io/child";
/// [`REAL_CHILD_LABEL`]`=real`, as a selector.
pub const REAL_CHILD_SELECTOR: &str = "lab.clusternet-kubeconfig.io/child=real";

/// The Kubernetes version the canned child's ManagedClusters report.
pub const SEED_K8S_VERSION: &str = "v1.32.13";

/// `lab.sh seed-many N`: cluster `i` (from 1) is `many-NNNNN` in
/// `clusternet-mNNNNN` with ID `5eed0000-0000-4000-8000-<i as 12 digits>`.
pub fn many(i: usize) -> (String, String, String) {
    (format!("many-{i:05}"), format!("clusternet-m{i:05}"), format!("5eed0000-0000-4000-8000-{i:012}"))
}

/// In the real child only: a namespace the parent does not have.
pub const CHILD_ONLY_NAMESPACE: &str = "child-only";
/// A service account (in [`CHILD_ONLY_NAMESPACE`]) that may list the child's namespaces.
pub const CHILD_SA: &str = "lab-reader";
/// CN of the child's client certificate (`LAB_CHILD_CERT`), may list namespaces.
pub const CHILD_CERT_USER: &str = "child-reader";
/// A narrowly bound service account in [`CHILD_ONLY_NAMESPACE`]: a Role that may
/// only get/list configmaps and pods there (what a CI job would be given).
pub const CI_SA: &str = "ci-reader";
/// A ConfigMap in [`CHILD_ONLY_NAMESPACE`] that [`CI_SA`] may read.
pub const CI_CONFIGMAP: &str = "lab-marker";

/// What clusternet-agent sets up on the child: this service account, bound to
/// cluster-admin, whose token it stores on the parent.
pub const DEPLOYER_NAMESPACE: &str = "clusternet-system";
pub const DEPLOYER_SA: &str = "clusternet-app-deployer";
/// The Secret the agent writes in the ManagedCluster's namespace on the parent.
pub const DEPLOYER_SECRET: &str = "child-cluster-deployer";
/// The longest token the child issues (`--service-account-max-token-expiration`,
/// in `lab.sh`).
pub const CHILD_MAX_TOKEN_HOURS: u64 = 720;
/// A parent user (client certificate) that may read ManagedClusters, not Secrets.
pub const PARENT_VIEWER: &str = "lab-cluster-viewer";

/// The ports a lab's processes listen on (picked at `up`).
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub apiserver: u16,
    pub child: u16,
    pub hub: u16,
    pub canned: u16,
    /// The OIDC issuer (`oidc-issuer`) the parent trusts.
    pub oidc: u16,
}

/// A lab's state directory and what `lab-setup` writes into it.
#[derive(Debug, Clone)]
pub struct State {
    pub dir: PathBuf,
}

impl State {
    pub fn pki(&self, file: &str) -> PathBuf {
        self.dir.join("pki").join(file)
    }

    fn pki_str(&self, file: &str) -> String {
        self.pki(file).display().to_string()
    }

    /// Certificates and keys, where lab.sh's processes read them: three
    /// separate trust domains for the parent (serving, client, front proxy),
    /// one for the hub's serving certificate, and two for the child, which
    /// shares nothing with the parent.
    pub fn write_pki(&self) -> io::Result<()> {
        let dir = self.dir.join("pki");
        fs::create_dir_all(&dir)?;
        set_mode(&dir, 0o700)?;
        let ca = self.ca("ca", "lab-cluster-ca")?;
        let localhost = ["127.0.0.1", "localhost"];
        let kubernetes = ["kubernetes", "kubernetes.default", "kubernetes.default.svc"];
        self.leaf(&ca, "apiserver", &Subject::cn("kube-apiserver"), &[&localhost[..], &kubernetes].concat())?;
        let client_ca = self.ca("client-ca", "lab-client-ca")?;
        self.leaf(&client_ca, "admin", &Subject::masters("lab-admin"), &[])?;
        self.leaf(&client_ca, "kcm", &Subject::cn("system:kube-controller-manager"), &[])?;
        // The hub stand-in reads ManagedClusters as its own user (not the tests' lab-admin).
        self.leaf(&client_ca, "hub-client", &Subject::masters("clusternet-hub"), &[])?;
        self.leaf(&client_ca, "viewer", &Subject::cn(PARENT_VIEWER), &[])?;
        let front_proxy_ca = self.ca("front-proxy-ca", "lab-front-proxy-ca")?;
        self.leaf(&front_proxy_ca, "front-proxy-client", &Subject::cn("front-proxy-client"), &[])?;
        // kube-aggregator verifies the hub with ServerName <service>.<namespace>.svc,
        // whatever host it dials (here `localhost`, from the ExternalName Service).
        let hub_ca = self.ca("hub-ca", "lab-hub-ca")?;
        let hub_names = ["clusternet-hub.clusternet-system.svc", "clusternet-hub.clusternet-system.svc.cluster.local"];
        self.leaf(&hub_ca, "hub", &Subject::cn("clusternet-hub"), &[&localhost[..], &hub_names].concat())?;
        self.signing_key("sa")?;
        // The child cluster: nothing shared with the parent.
        let child_ca = self.ca("child-ca", "lab-child-ca")?;
        self.leaf(&child_ca, "child-apiserver", &Subject::cn("child-kube-apiserver"), &localhost)?;
        let child_client_ca = self.ca("child-client-ca", "lab-child-client-ca")?;
        self.leaf(&child_client_ca, "child-admin", &Subject::masters("child-admin"), &[])?;
        self.leaf(&child_client_ca, "child-user", &Subject::cn(CHILD_CERT_USER), &[])?;
        self.signing_key("child-sa")
    }

    fn ca(&self, name: &str, cn: &str) -> io::Result<Ca> {
        let ca = Ca::new(cn);
        write_private(&self.pki(&format!("{name}.key")), &ca.key.serialize_pem())?;
        fs::write(self.pki(&format!("{name}.crt")), ca.cert.pem())?;
        Ok(ca)
    }

    /// A leaf: a serving certificate when it has names, else a client certificate.
    fn leaf(&self, ca: &Ca, name: &str, subject: &Subject, sans: &[&str]) -> io::Result<()> {
        let usage = if sans.is_empty() { ClientAuth } else { ServerAuth };
        let sans = sans.iter().map(|s| s.to_string()).collect();
        let (cert, key) = ca.issue_to(subject.organization, subject.cn, sans, usage);
        write_private(&self.pki(&format!("{name}.key")), &key)?;
        fs::write(self.pki(&format!("{name}.crt")), cert)
    }

    /// The OIDC issuer's files: its serving CA and certificate
    /// (`oidc-ca.crt`, `oidc.crt`), its ES256 signing key (`oidc-signing.key`,
    /// made now), the Actions request token (`oidc-request.token`), and the
    /// parent's `authentication-config.yaml` trusting it on `port`: audience
    /// [`oidc::AUDIENCE`], username `oidc:<sub>`, the repository and ref as
    /// user extras, and a rule that pins [`oidc::REPOSITORY`].
    pub fn write_oidc(&self, port: u16) -> io::Result<()> {
        let ca = self.ca("oidc-ca", "lab-oidc-ca")?;
        self.leaf(&ca, "oidc", &Subject::cn("oidc-issuer"), &["127.0.0.1"])?;
        self.signing_key("oidc-signing")?;
        let request_token = format!("lab-actions-request-{}", B64URL.encode(rand_bytes()));
        write_private(&self.pki("oidc-request.token"), &request_token)?;
        let ca_pem = ca.cert.pem();
        let indented: String = ca_pem.lines().map(|l| format!("      {l}\n")).collect();
        let (aud, repo, prefix) = (oidc::AUDIENCE, oidc::REPOSITORY, oidc::USERNAME_PREFIX);
        let extra = "lab.clusternet-kubeconfig.io";
        let text = [
            "apiVersion: apiserver.config.k8s.io/v1beta1".to_string(),
            "kind: AuthenticationConfiguration".into(),
            "jwt:".into(),
            "- issuer:".into(),
            format!("    url: https://127.0.0.1:{port}"),
            format!("    audiences: [{aud}]"),
            "    certificateAuthority: |".into(),
            indented.trim_end().to_string(),
            "  claimValidationRules:".into(),
            format!("  - expression: 'claims.repository == \"{repo}\"'"),
            format!("    message: the token is not for repository {repo}"),
            "  claimMappings:".into(),
            "    username:".into(),
            "      claim: sub".into(),
            format!("      prefix: \"{prefix}\""),
            "    extra:".into(),
            format!("    - key: {extra}/repository"),
            "      valueExpression: claims.repository".into(),
            format!("    - key: {extra}/ref"),
            "      valueExpression: claims.ref".into(),
        ]
        .join("\n")
            + "\n";
        fs::write(self.dir.join("authentication-config.yaml"), text)
    }

    /// A service-account token signing key (`<name>.key`) and its public half (`<name>.pub`).
    fn signing_key(&self, name: &str) -> io::Result<()> {
        let key = rcgen::KeyPair::generate().map_err(io::Error::other)?;
        write_private(&self.pki(&format!("{name}.key")), &key.serialize_pem())?;
        fs::write(self.pki(&format!("{name}.pub")), key.public_key_pem())
    }

    /// A kubeconfig for `user` (its certificate files `pki/<cert>.crt/.key`)
    /// on `https://127.0.0.1:<port>`, trusting `pki/<ca>.crt`.
    pub fn write_kubeconfig(&self, file: &Path, who: &Kubeconfig) -> io::Result<()> {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n    server: https://127.0.0.1:{port}\n    \
             certificate-authority: {ca}\nusers:\n- name: {user}\n  user:\n    client-certificate: {cert}\n    \
             client-key: {key}\ncontexts:\n- name: lab\n  context: {{cluster: lab, user: {user}}}\ncurrent-context: lab\n",
            port = who.port,
            ca = self.pki_str(&format!("{}.crt", who.ca)),
            user = who.user,
            cert = self.pki_str(&format!("{}.crt", who.cert)),
            key = self.pki_str(&format!("{}.key", who.cert)),
        );
        write_private(file, &text)
    }

    /// The kubeconfigs `up` needs: the lab admin's, the controller-manager's,
    /// the child admin's, and [`PARENT_VIEWER`]'s.
    pub fn write_kubeconfigs(&self, ports: &Ports) -> io::Result<()> {
        self.write_kubeconfig(&self.dir.join("admin.kubeconfig"), &Kubeconfig::admin(ports.apiserver))?;
        let viewer = Kubeconfig { user: PARENT_VIEWER, cert: "viewer", ca: "ca", port: ports.apiserver };
        self.write_kubeconfig(&self.dir.join("viewer.kubeconfig"), &viewer)?;
        let kcm = Kubeconfig { user: "system:kube-controller-manager", cert: "kcm", ca: "ca", port: ports.apiserver };
        self.write_kubeconfig(&self.dir.join("kcm.kubeconfig"), &kcm)?;
        let child = Kubeconfig { user: "child-admin", cert: "child-admin", ca: "child-ca", port: ports.child };
        self.write_kubeconfig(&self.dir.join("child.kubeconfig"), &child)
    }

    /// The manifests `up` applies, as JSON files in `manifests/`:
    /// `parent.json` (clusternet-system, the hub-proxy token, the APIService),
    /// `seeds.json` (the ManagedClusters and their namespaces),
    /// `seeds-status.json` (their status, for a server-side apply of the
    /// status subresource), `child.json` (the real child's objects); and
    /// `agents`, the IDs of the clusters whose agent `up` starts.
    pub fn write_manifests(&self, ports: &Ports, k8s_version: &str, now: &str) -> io::Result<()> {
        let dir = self.dir.join("manifests");
        fs::create_dir_all(&dir)?;
        let hub_ca = fs::read(self.pki("hub-ca.crt"))?;
        let files = [
            ("parent.json", list(parent_objects(ports.hub, &hub_ca))),
            ("seeds.json", list(SEEDS.iter().flat_map(seed_objects).collect())),
            ("seeds-status.json", list(SEEDS.iter().map(|s| seed_status(s, ports, k8s_version, now)).collect())),
            ("child.json", list(child_objects())),
        ];
        for (name, doc) in files {
            fs::write(dir.join(name), serde_json::to_string_pretty(&doc).map_err(io::Error::other)?)?;
        }
        // The clusters `up` starts an agent for, one ID a line.
        let agents: String = SEEDS.iter().filter(|s| s.has_agent()).map(|s| format!("{}\n", s.id)).collect();
        fs::write(self.dir.join("agents"), agents)
    }
}

impl State {
    /// A 48 h token for [`CHILD_SA`] (TokenRequest through the child admin's
    /// kubeconfig, so no controller-manager is needed), in `child/sa.token`.
    pub fn write_child_token(&self) -> io::Result<PathBuf> {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.dir.join("child.kubeconfig"))
            .args(["-n", CHILD_ONLY_NAMESPACE, "create", "token", CHILD_SA, "--duration", "48h"])
            .stdin(std::process::Stdio::null())
            .output()?;
        let token = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || token.trim().is_empty() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(io::Error::other(format!("kubectl create token {CHILD_SA}: {}", why.trim())));
        }
        let dir = self.dir.join("child");
        fs::create_dir_all(&dir)?;
        let path = dir.join("sa.token");
        write_private(&path, &token)?;
        Ok(path)
    }

    /// The audit policy of `kube-apiserver-noanon`: the metadata of every
    /// request, so that tests can count exactly the requests a command made.
    pub fn write_audit_policy(&self) -> io::Result<()> {
        let policy =
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n";
        fs::write(self.dir.join("audit-policy.yaml"), policy)
    }
}

impl State {
    /// What clusternet-agent stores on the parent for the real child: the
    /// child's legacy, Secret-based token of [`DEPLOYER_SA`] (a JWT without
    /// `exp`; the child runs no token controller, so it is signed here with
    /// the child's service-account key, claims as that controller writes
    /// them), kept in `child/deployer.token`; `manifests/deployer-child.json`,
    /// the child's `kubernetes.io/service-account-token` Secret holding it
    /// (the child's legacy-token authenticator checks the token against it);
    /// and `manifests/deployer.json`, the [`DEPLOYER_SECRET`] of [`CHILD_REAL`]
    /// and [`CHILD_REAL_2`] (and, with an empty token, of [`CHILD_EMPTY_TOKEN`])
    /// as the agent writes it.
    pub fn write_deployer_secrets(&self, child_port: u16) -> io::Result<()> {
        let uid = self.child_kubectl(&[
            "-n",
            DEPLOYER_NAMESPACE,
            "get",
            "sa",
            DEPLOYER_SA,
            "-o",
            "jsonpath={.metadata.uid}",
        ])?;
        let token = legacy_token(&fs::read_to_string(self.pki("child-sa.key"))?, &uid)?;
        let dir = self.dir.join("child");
        fs::create_dir_all(&dir)?;
        write_private(&dir.join("deployer.token"), &token)?;
        let ca = fs::read_to_string(self.pki("child-ca.crt"))?;
        let child_secret = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": DEPLOYER_TOKEN_SECRET, "namespace": DEPLOYER_NAMESPACE,
                "annotations": {
                    "kubernetes.io/service-account.name": DEPLOYER_SA,
                    "kubernetes.io/service-account.uid": uid,
                },
            },
            "stringData": {"token": token, "ca.crt": ca, "namespace": DEPLOYER_NAMESPACE},
        });
        let manifests = self.dir.join("manifests");
        let doc = serde_json::to_string_pretty(&list(vec![child_secret])).map_err(io::Error::other)?;
        write_private(&manifests.join("deployer-child.json"), &doc)?;
        let url = format!("https://127.0.0.1:{child_port}");
        let secret = |s: &Seed, token: &str| deployer_secret(s, &Deployer { token, ca: &ca, url: &url, uid: &uid });
        let items = vec![secret(&CHILD_REAL, &token), secret(&CHILD_REAL_2, &token), secret(&CHILD_EMPTY_TOKEN, "")];
        let doc = serde_json::to_string_pretty(&list(items)).map_err(io::Error::other)?;
        write_private(&manifests.join("deployer.json"), &doc)
    }

    /// `kubectl --kubeconfig child.kubeconfig <args>`: its stdout, trimmed.
    fn child_kubectl(&self, args: &[&str]) -> io::Result<String> {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.dir.join("child.kubeconfig"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || text.is_empty() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(io::Error::other(format!("kubectl {}: {}", args.join(" "), why.trim())));
        }
        Ok(text)
    }
}

/// The child's Secret of type `kubernetes.io/service-account-token` for
/// [`DEPLOYER_SA`] (its name is the lab's choice).
pub const DEPLOYER_TOKEN_SECRET: &str = "clusternet-app-deployer-token";

/// A legacy service-account token of [`DEPLOYER_SA`] (uid `uid`) held by
/// [`DEPLOYER_TOKEN_SECRET`], signed ES256 with `key_pem` (PKCS#8 P-256): the
/// claims the legacy token controller writes, no `exp`, `iat` or `aud`.
pub fn legacy_token(key_pem: &str, uid: &str) -> io::Result<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use rustls_pki_types::PrivatePkcs8KeyDer;
    use rustls_pki_types::pem::PemObject as _;
    let der = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).map_err(io::Error::other)?;
    let rng = ring::rand::SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.secret_pkcs8_der(), &rng)
        .map_err(|e| io::Error::other(format!("the child's service-account key: {e}")))?;
    let prefix = "kubernetes.io/serviceaccount";
    let claims = json!({
        "iss": "kubernetes/serviceaccount",
        format!("{prefix}/namespace"): DEPLOYER_NAMESPACE,
        format!("{prefix}/secret.name"): DEPLOYER_TOKEN_SECRET,
        format!("{prefix}/service-account.name"): DEPLOYER_SA,
        format!("{prefix}/service-account.uid"): uid,
        "sub": format!("system:serviceaccount:{DEPLOYER_NAMESPACE}:{DEPLOYER_SA}"),
    });
    let input = format!("{}.{}", B64.encode(r#"{"alg":"ES256"}"#), B64.encode(claims.to_string()));
    let signature = key.sign(&rng, input.as_bytes()).map_err(|e| io::Error::other(format!("signing: {e}")))?;
    Ok(format!("{input}.{}", B64.encode(signature.as_ref())))
}

/// The values of one deployer Secret.
struct Deployer<'a> {
    token: &'a str,
    ca: &'a str,
    url: &'a str,
    uid: &'a str,
}

/// The Secret clusternet-agent creates in `s`'s namespace, as the real agent
/// writes it (v0.18.1): labelled with the cluster ID, who made it and how,
/// marked for updates, with the service account's token, CA, name and UID,
/// and the child's URL. (The real controller-manager also adds the finalizer
/// `apps.clusternet.io/finalizer`; left out, so tests may delete it.)
fn deployer_secret(s: &Seed, d: &Deployer) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "name": DEPLOYER_SECRET, "namespace": s.namespace,
            "labels": {
                CLUSTER_ID_LABEL: s.id,
                "clusternet.io/created-by": "clusternet-agent",
                "clusters.clusternet.io/bootstrapping": "credentials-auto",
            },
            "annotations": {"clusternet.io/autoupdate": "true"},
        },
        "stringData": {
            "token": d.token, "ca.crt": d.ca, "apiserver-advertise-url": d.url,
            "service-account.name": DEPLOYER_SA, "service-account.uid": d.uid,
        },
    })
}

/// The versions a lab runs, as `lab.sh` read them from the pinned go.mod files.
#[derive(Debug, Clone)]
pub struct Versions {
    pub kubernetes: String,
    pub etcd: String,
}

impl State {
    /// `lab.env`, for the tests and for `source`: what is known only at run
    /// time (ports from `ports.env`, paths, versions, which Clusternet
    /// manifests `up` applied); the seeded objects are this module's constants.
    /// `LAB_NOANON_*` once `up-noanon` has claimed its port.
    pub fn write_env(&self, versions: &Versions, now: &str) -> io::Result<()> {
        let ports = fs::read_to_string(self.dir.join("ports.env"))?;
        let port =
            |name: &str| ports.lines().rev().find_map(|l| l.strip_prefix(name)?.strip_prefix('=')).map(str::to_string);
        let need = |name: &str| port(name).ok_or_else(|| io::Error::other(format!("{name} missing from ports.env")));
        let manifests = fs::read_to_string(self.dir.join("manifests-source")).unwrap_or_default();
        let state = self.dir.display();
        let url = |name: &str| need(name).map(|p| format!("https://127.0.0.1:{p}"));
        let mut vars = vec![
            ("LAB_STATE", state.to_string()),
            ("LAB_KUBECONFIG", format!("{state}/admin.kubeconfig")),
            ("LAB_SERVER", url("APISERVER_PORT")?),
            ("LAB_CA", self.pki_str("ca.crt")),
            ("LAB_ADMIN_CERT", self.pki_str("admin.crt")),
            ("LAB_ADMIN_KEY", self.pki_str("admin.key")),
            ("LAB_HUB_RECORD", format!("{state}/hub-requests.jsonl")),
            ("LAB_HUB_PORT", need("HUB_PORT")?),
            ("LAB_HUB_CA", self.pki_str("hub-ca.crt")),
            ("LAB_ETCD_PORT", need("ETCD_PORT")?),
            ("LAB_KCM_PORT", need("KCM_PORT")?),
            ("LAB_K8S_VERSION", versions.kubernetes.clone()),
            ("LAB_ETCD_VERSION", versions.etcd.clone()),
            ("LAB_MANIFESTS", manifests.trim().to_string()),
            ("LAB_CANNED_CHILD_SERVER", url("CANNED_PORT")?),
            ("LAB_CHILD_SERVER", url("CHILD_PORT")?),
            ("LAB_CHILD_PORT", need("CHILD_PORT")?),
            ("LAB_CHILD_CA", self.pki_str("child-ca.crt")),
            ("LAB_CHILD_KUBECONFIG", format!("{state}/child.kubeconfig")),
            ("LAB_CHILD_TOKEN_FILE", format!("{state}/child/sa.token")),
            ("LAB_CHILD_CERT", self.pki_str("child-user.crt")),
            ("LAB_CHILD_KEY", self.pki_str("child-user.key")),
            ("LAB_DEPLOYER_TOKEN_FILE", format!("{state}/child/deployer.token")),
            ("LAB_VIEWER_KUBECONFIG", format!("{state}/viewer.kubeconfig")),
            ("LAB_OIDC_URL", url("OIDC_PORT")?),
            ("LAB_OIDC_CA", self.pki_str("oidc-ca.crt")),
            ("LAB_OIDC_REQUEST_TOKEN_FILE", self.pki_str("oidc-request.token")),
            ("LAB_OIDC_SIGNING_KEY", self.pki_str("oidc-signing.key")),
            ("LAB_OIDC_RECORD", format!("{state}/oidc-mints.jsonl")),
        ];
        if port("NOANON_PORT").is_some() {
            vars.push(("LAB_NOANON_SERVER", url("NOANON_PORT")?));
            vars.push(("LAB_NOANON_KUBECONFIG", format!("{state}/noanon.kubeconfig")));
            vars.push(("LAB_NOANON_AUDIT", format!("{state}/logs/noanon-audit.log")));
        }
        let mut text = format!("# clusternet-kubeconfig lab ({now}); source this file\n");
        for (name, value) in vars {
            text.push_str(&format!("export {name}={value}\n"));
        }
        // Whole or not at all: its presence says the lab is up.
        let tmp = self.dir.join("lab.env.tmp");
        fs::write(&tmp, text)?;
        fs::rename(tmp, self.dir.join("lab.env"))
    }
}

/// Who a kubeconfig authenticates as, and where.
#[derive(Debug, Clone, Copy)]
pub struct Kubeconfig {
    pub user: &'static str,
    /// `pki/<cert>.crt` and `pki/<cert>.key`.
    pub cert: &'static str,
    /// `pki/<ca>.crt`
    pub ca: &'static str,
    pub port: u16,
}

impl Kubeconfig {
    /// The lab admin (system:masters) on the parent apiserver at `port`.
    pub fn admin(port: u16) -> Kubeconfig {
        Kubeconfig { user: "lab-admin", cert: "admin", ca: "ca", port }
    }
}

/// A certificate's subject: a CN, and an organization (Kubernetes: a group).
struct Subject {
    organization: Option<&'static str>,
    cn: &'static str,
}

impl Subject {
    fn cn(cn: &'static str) -> Subject {
        Subject { organization: None, cn }
    }
    fn masters(cn: &'static str) -> Subject {
        Subject { organization: Some("system:masters"), cn }
    }
}

fn write_private(path: &Path, text: &str) -> io::Result<()> {
    fs::write(path, text)?;
    set_mode(path, 0o600)
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// clusternet-system with the hub-proxy service account and its token
/// Secret (filled by the controller-manager), and the stand-in registered as
/// `v1alpha1.proxies.clusternet.io` behind an ExternalName Service.
fn parent_objects(hub_port: u16, hub_ca_pem: &[u8]) -> Vec<Value> {
    use base64::Engine as _;
    let ns = "clusternet-system";
    vec![
        namespace(ns),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "clusternet-hub-proxy", "namespace": ns}}),
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": "clusternet-hub-proxy", "namespace": ns,
                "annotations": {"kubernetes.io/service-account.name": "clusternet-hub-proxy"},
            },
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": PARENT_VIEWER},
            "rules": [{"apiGroups": ["clusters.clusternet.io"], "resources": ["managedclusters"], "verbs": ["get", "list", "watch"]}],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": PARENT_VIEWER},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": PARENT_VIEWER},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": PARENT_VIEWER}],
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "clusternet-hub", "namespace": ns},
            "spec": {"type": "ExternalName", "externalName": "localhost"},
        }),
        json!({
            "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "v1alpha1.proxies.clusternet.io"},
            "spec": {
                "group": "proxies.clusternet.io", "version": "v1alpha1",
                "service": {"namespace": ns, "name": "clusternet-hub", "port": hub_port},
                "caBundle": base64::engine::general_purpose::STANDARD.encode(hub_ca_pem),
                "groupPriorityMinimum": 1000, "versionPriority": 100,
            },
        }),
    ]
}

const CLUSTER_ID_LABEL: &str = "clusters.clusternet.io/cluster-id";

fn seed_objects(s: &Seed) -> [Value; 2] {
    let mut cluster = managed_cluster(s.name, s.namespace, s.id, s.sync_mode);
    if s.reports == Reports::RealChild {
        cluster["metadata"]["labels"][REAL_CHILD_LABEL] = json!("real");
    }
    [namespace(s.namespace), cluster]
}

fn managed_cluster(name: &str, namespace: &str, id: &str, sync_mode: &str) -> Value {
    json!({
        "apiVersion": "clusters.clusternet.io/v1beta1", "kind": "ManagedCluster",
        "metadata": {"name": name, "namespace": namespace, "labels": {CLUSTER_ID_LABEL: id}},
        "spec": {"clusterId": id, "clusterType": "EdgeCluster", "syncMode": sync_mode},
    })
}

/// The status clusternet-agent would report for `s`.
fn seed_status(s: &Seed, ports: &Ports, k8s_version: &str, now: &str) -> Value {
    let canned = format!("https://127.0.0.1:{}", ports.canned);
    let real = format!("https://127.0.0.1:{}", ports.child);
    let (url, version, ready) = match s.reports {
        Reports::CannedChild | Reports::NoSocket => (Some(canned.as_str()), SEED_K8S_VERSION, true),
        Reports::RealChild => (Some(real.as_str()), k8s_version, true),
        Reports::Disconnected => (Some("https://10.0.0.41:6443"), SEED_K8S_VERSION, false),
        Reports::NoUrl => (None, SEED_K8S_VERSION, true),
    };
    let condition = if ready {
        json!({"type": "Ready", "status": "True", "reason": "ManagedClusterReady", "message": "managed cluster is ready", "lastTransitionTime": now})
    } else {
        json!({"type": "Ready", "status": "False", "reason": "ClusterNotReady", "message": "agent disconnected", "lastTransitionTime": now})
    };
    let mut status = json!({
        "useSocket": s.reports != Reports::NoSocket, "k8sVersion": version,
        "readyz": ready, "healthz": ready, "livez": ready, "conditions": [condition],
    });
    if let Some(url) = url {
        status["apiserverURL"] = json!(url);
    }
    json!({
        "apiVersion": "clusters.clusternet.io/v1beta1", "kind": "ManagedCluster",
        "metadata": {"name": s.name, "namespace": s.namespace},
        "status": status,
    })
}

/// What the real child serves to the tests: a namespace the parent does not
/// have, a service account and a client-certificate user that may list
/// namespaces, [`CI_SA`] with its Role, and what clusternet-agent sets up
/// ([`DEPLOYER_SA`] bound to cluster-admin).
fn child_objects() -> Vec<Value> {
    let role = "lab-namespace-reader";
    let rbac = "rbac.authorization.k8s.io";
    let ci = json!({"kind": "ServiceAccount", "name": CI_SA, "namespace": CHILD_ONLY_NAMESPACE});
    let deployer = json!({"kind": "ServiceAccount", "name": DEPLOYER_SA, "namespace": DEPLOYER_NAMESPACE});
    vec![
        namespace(DEPLOYER_NAMESPACE),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEPLOYER_SA, "namespace": DEPLOYER_NAMESPACE}}),
        json!({
            "apiVersion": format!("{rbac}/v1"), "kind": "ClusterRoleBinding", "metadata": {"name": DEPLOYER_SA},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [deployer],
        }),
        namespace(CHILD_ONLY_NAMESPACE),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": CHILD_SA, "namespace": CHILD_ONLY_NAMESPACE}}),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [
                {"kind": "ServiceAccount", "name": CHILD_SA, "namespace": CHILD_ONLY_NAMESPACE},
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": CHILD_CERT_USER},
            ],
        }),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": CI_SA, "namespace": CHILD_ONLY_NAMESPACE}}),
        json!({
            "apiVersion": format!("{rbac}/v1"), "kind": "Role", "metadata": {"name": CI_SA, "namespace": CHILD_ONLY_NAMESPACE},
            "rules": [{"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": ["get", "list"]}],
        }),
        json!({
            "apiVersion": format!("{rbac}/v1"), "kind": "RoleBinding", "metadata": {"name": CI_SA, "namespace": CHILD_ONLY_NAMESPACE},
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": CI_SA},
            "subjects": [ci],
        }),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CI_CONFIGMAP, "namespace": CHILD_ONLY_NAMESPACE},
            "data": {"seeded-by": "lab"},
        }),
    ]
}

/// `seed-many`: `n` more ManagedClusters ([`many`]) and their namespaces,
/// spec and label only (a status would take one request per object).
pub fn many_manifest(n: usize) -> Value {
    let items = (1..=n)
        .flat_map(|i| {
            let (name, ns, id) = many(i);
            [namespace(&ns), managed_cluster(&name, &ns, &id, "Pull")]
        })
        .collect();
    list(items)
}

/// `secs` since the epoch as RFC 3339 UTC (`2026-11-29T10:00:00Z`), for
/// conditions' `lastTransitionTime`.
pub fn rfc3339(secs: u64) -> String {
    let secs = i64::try_from(secs).expect("a time before the year 10000");
    jiff::Timestamp::from_second(secs).expect("a time before the year 10000").to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_950_245), "2026-11-29T11:04:05Z");
    }

    #[test]
    fn lab_sh_starts_the_child_with_the_max_token_lifetime_the_tests_expect() {
        let script = include_str!("../../lab-env/lab.sh");
        let line = format!("\nCHILD_MAX_TOKEN_HOURS={}\n", super::CHILD_MAX_TOKEN_HOURS);
        assert!(script.contains(&line), "lab.sh must set{line}");
        assert!(script.contains("--service-account-max-token-expiration \"$CHILD_MAX_TOKEN_HOURS\"h"));
    }

    #[test]
    fn legacy_tokens_are_signed_es256_without_expiry() {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        let key = rcgen::KeyPair::generate().unwrap();
        let token = super::legacy_token(&key.serialize_pem(), "u-1").unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let claims: serde_json::Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "kubernetes/serviceaccount");
        assert_eq!(claims["kubernetes.io/serviceaccount/service-account.uid"], "u-1");
        assert!(claims.get("exp").is_none() && claims.get("iat").is_none(), "{claims}");
        let public =
            ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, key.public_key_raw());
        let signed = format!("{}.{}", parts[0], parts[1]);
        public.verify(signed.as_bytes(), &B64.decode(parts[2]).unwrap()).expect("a valid ES256 signature");
    }

    #[test]
    fn seeds_are_unique_where_the_tests_need_them() {
        let seeds = super::SEEDS;
        for (i, a) in seeds.iter().enumerate() {
            for b in &seeds[i + 1..] {
                assert_ne!(a.id, b.id);
                assert_ne!(a.namespace, b.namespace);
            }
        }
        assert_eq!(super::DUP_1.name, super::DUP_2.name);
    }
}
