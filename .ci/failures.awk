# What each failed test printed, from a `bun test` log: bun prints a test's output and error
# before its "(fail)" line, so the lines since the test before it (at most the last 60) are kept.
# The summary's repeat of a "(fail)" line adds nothing and is left out.
function forget() { n = 0 }
/^\((pass|skip|todo)\) / || /^test\/.*:$/ { forget(); next }
/^\(fail\) / {
  if (!($0 in shown)) {
    shown[$0] = 1
    out = out "\n"
    for (i = (n > 60 ? n - 60 : 0); i < n; i++) out = out kept[i % 60] "\n"
    out = out $0 "\n"
  }
  forget()
  next
}
{ kept[n % 60] = $0; n++ }
END { if (out != "") printf "\n==== what each failed test printed ====%s", out }
