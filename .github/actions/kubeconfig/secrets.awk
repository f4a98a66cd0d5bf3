# Reads a kubeconfig as clusternet-kubeconfig prints it with `-o json`
# (serde_json's pretty form: one member or array element per line, every
# string on one line with JSON escapes) and prints, one per line:
#   mask <value>      each credential value under `users`
#   context <value>   the current-context
# Values are decoded from JSON and re-encoded as workflow-command data
# (% -> %25, CR -> %0D, LF -> %0A), so that every value stays on one line and
# reaches ::add-mask:: and outputs exactly. Anything this reader does not
# expect stops it with exit status 3: a credential is never silently missed.

BEGIN {
  split("token client-key-data password id-token refresh-token access-token client-secret clusternet-token clusternet-privatekey", names, " ")
  for (i in names) secret[names[i]] = 1
  depth = 0
}

function unexpected(why) {
  printf "line %d: %s\n", NR, why > "/dev/stderr"
  failed = 1
  exit 3
}

function hexval(h,   i, n, c) {
  n = 0
  for (i = 1; i <= length(h); i++) {
    c = index("0123456789abcdef", tolower(substr(h, i, 1)))
    if (c == 0) unexpected("bad \\u escape")
    n = n * 16 + c - 1
  }
  return n
}

# The JSON string body `s` (between the quotes) as workflow-command data.
function decode(s,   out, i, c, n) {
  out = ""
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (c == "%") { out = out "%25"; continue }
    if (c != "\\") { out = out c; continue }
    c = substr(s, ++i, 1)
    if (c == "n") out = out "%0A"
    else if (c == "r") out = out "%0D"
    else if (c == "t") out = out "\t"
    else if (c == "b") out = out "\b"
    else if (c == "f") out = out "\f"
    else if (c == "\"" || c == "\\" || c == "/") out = out c
    else if (c == "u") {
      n = hexval(substr(s, i + 1, 4)); i += 4
      # serde_json escapes only control characters this way.
      if (n == 10) out = out "%0A"
      else if (n == 13) out = out "%0D"
      else if (n > 0 && n < 128) out = out sprintf("%c", n)
      else unexpected("\\u escape outside ASCII")
    } else unexpected("bad escape")
  }
  return out
}

# The path of containers open at this line, as /key/key/[]/key.
function path(   p, i) {
  p = ""
  for (i = 2; i <= depth; i++) p = p "/" stack[i]
  return p
}

function value(key, raw,   p, is_secret) {
  p = path()
  if (p == "" && key == "current-context") { print "context " decode(raw); return }
  if (index(p, "/users/[]/user") != 1) return
  is_secret = (key in secret) || p ~ /\/auth-provider\/config$/ || (key == "value" && p ~ /\/exec\/env\/\[\]$/)
  if (is_secret && raw != "") print "mask " decode(raw)
}

{
  line = $0
  sub(/^[ \t]+/, "", line)
  sub(/,$/, "", line)
  key = ""
  if (match(line, /^"([^"\\]|\\.)*": /)) {
    if (depth == 0 || kind[depth] != "object") unexpected("a member outside an object")
    key = decode(substr(line, 2, RLENGTH - 4))
    line = substr(line, RLENGTH + 1)
  } else if (depth > 0 && kind[depth] == "object" && line != "}") {
    unexpected("a member without a key")
  } else if (depth > 0) {
    # An array element belongs to the array's key (as-user-extra values).
    key = stack[depth]
  }
  if (line == "{" || line == "[") {
    name = (depth == 0 ? "" : (kind[depth] == "array" ? "[]" : key))
    depth++
    stack[depth] = name
    kind[depth] = (line == "{" ? "object" : "array")
    next
  }
  if (line == "}" || line == "]") {
    if (depth == 0 || kind[depth] != (line == "}" ? "object" : "array")) unexpected("unbalanced")
    depth--
    next
  }
  if (line ~ /^".*"$/) {
    if (depth == 0) unexpected("a bare string")
    value(key, substr(line, 2, length(line) - 2))
    next
  }
  if (line ~ /^(\{\}|\[\]|true|false|null|-?[0-9][0-9.eE+-]*)$/) next
  unexpected("not the pretty JSON clusternet-kubeconfig prints")
}

END {
  if (!failed && depth != 0) unexpected("unbalanced")
}
