/* test_builder_dockerfile.c — the Dockerfile parser as a table: valid files with the instruction
 * list they give, broken ones with the exact message, and the bounds. */
#include "builder/builder.h"
#include "rbx_check.h"

#include <string.h>

/* ---- a canonical dump of a parsed Dockerfile: one line per instruction ----------------------- */

struct out {
    char *p;
    size_t len;
};

RBX_PRINTF(2, 3)
static void put(struct out *o, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
    va_end(ap);
    size_t n = strlen(s);
    o->p = realloc(o->p, o->len + n + 1);
    memcpy(o->p + o->len, s, n + 1);
    o->len += n;
    free(s);
}

static void put_q(struct out *o, const char *s)
{
    if (!s) {
        put(o, "-");
        return;
    }
    put(o, "\"");
    for (; *s; s++) {
        if (*s == '\n')
            put(o, "\\n");
        else if (*s == '\t')
            put(o, "\\t");
        else if (*s == '"' || *s == '\\')
            put(o, "\\%c", *s);
        else
            put(o, "%c", *s);
    }
    put(o, "\"");
}

static void put_v(struct out *o, char *const *v)
{
    put(o, "[");
    for (size_t i = 0; v && v[i]; i++) {
        if (i)
            put(o, " ");
        put_q(o, v[i]);
    }
    put(o, "]");
}

static void put_cmd(struct out *o, const struct rbx_df_command *c)
{
    put(o, " %s", c->exec ? "exec" : "shell");
    put_v(o, c->args);
}

static void put_instr(struct out *o, const struct rbx_df_instr *in);

static void put_heredocs(struct out *o, const struct rbx_df_instr *in)
{
    for (size_t i = 0; i < in->n_heredocs; i++) {
        const struct rbx_df_heredoc *h = &in->heredocs[i];
        put(o, " <<%s%s%s", h->chomp ? "-" : "", h->expand ? "" : "'", h->name);
        if (h->fd)
            put(o, "(fd=%u)", h->fd);
        put(o, "=");
        put_q(o, h->content);
    }
}

static void put_instr(struct out *o, const struct rbx_df_instr *in)
{
    put(o, "%u:%u %s", in->line, in->column, rbx_df_kind_name(in->kind));
    switch (in->kind) {
    case RBX_DF_FROM:
        put(o, " ");
        put_q(o, in->from.image);
        if (in->from.name)
            put(o, " AS %s", in->from.name);
        if (in->from.platform) {
            put(o, " platform=");
            put_q(o, in->from.platform);
        }
        break;
    case RBX_DF_RUN:
        put_cmd(o, &in->run.cmd);
        for (size_t i = 0; i < in->run.n_mounts; i++) {
            put(o, " mount=");
            put_q(o, in->run.mount_specs[i]);
        }
        if (in->run.network)
            put(o, " network=%s", in->run.network);
        if (in->run.security)
            put(o, " security=%s", in->run.security);
        if (in->run.devices) {
            put(o, " devices=");
            put_v(o, in->run.devices);
        }
        break;
    case RBX_DF_CMD:
    case RBX_DF_ENTRYPOINT:
    case RBX_DF_SHELL: put_cmd(o, &in->cmd); break;
    case RBX_DF_COPY:
    case RBX_DF_ADD:
        put(o, "%s ", in->copy.exec ? " exec" : "");
        put_v(o, in->copy.srcs);
        put(o, " -> ");
        put_q(o, in->copy.dest);
        if (in->copy.from)
            put(o, " from=%s", in->copy.from);
        if (in->copy.chown)
            put(o, " chown=%s", in->copy.chown);
        if (in->copy.chmod)
            put(o, " chmod=%s", in->copy.chmod);
        if (in->copy.link)
            put(o, " link");
        if (in->copy.parents)
            put(o, " parents");
        if (in->copy.excludes) {
            put(o, " exclude=");
            put_v(o, in->copy.excludes);
        }
        if (in->copy.checksum)
            put(o, " checksum=%s", in->copy.checksum);
        if (in->copy.keep_git_dir)
            put(o, " keep-git-dir");
        if (in->copy.unpack_set)
            put(o, " unpack=%s", in->copy.unpack ? "true" : "false");
        break;
    case RBX_DF_ENV:
    case RBX_DF_ARG:
    case RBX_DF_LABEL:
    case RBX_DF_MAINTAINER:
        for (size_t i = 0; i < in->kv.n_pairs; i++) {
            put(o, " ");
            put_q(o, in->kv.pairs[i].key);
            if (in->kv.pairs[i].value) {
                put(o, "=");
                put_q(o, in->kv.pairs[i].value);
            }
        }
        break;
    case RBX_DF_WORKDIR:
    case RBX_DF_USER:
    case RBX_DF_STOPSIGNAL:
        put(o, " ");
        put_q(o, in->arg);
        break;
    case RBX_DF_EXPOSE:
    case RBX_DF_VOLUME:
        put(o, "%s ", in->list.exec ? " exec" : "");
        put_v(o, in->list.words);
        break;
    case RBX_DF_HEALTHCHECK:
        if (in->health.none) {
            put(o, " NONE");
            break;
        }
        put_cmd(o, &in->health.cmd);
        if (in->health.interval_ns)
            put(o, " interval=%llu", (unsigned long long)in->health.interval_ns);
        if (in->health.timeout_ns)
            put(o, " timeout=%llu", (unsigned long long)in->health.timeout_ns);
        if (in->health.start_period_ns)
            put(o, " start-period=%llu", (unsigned long long)in->health.start_period_ns);
        if (in->health.start_interval_ns)
            put(o, " start-interval=%llu", (unsigned long long)in->health.start_interval_ns);
        if (in->health.retries)
            put(o, " retries=%u", in->health.retries);
        break;
    case RBX_DF_ONBUILD:
        put(o, " ");
        put_q(o, in->onbuild.expression);
        put(o, " { ");
        put_instr(o, in->onbuild.trigger);
        put(o, " }");
        break;
    }
    put_heredocs(o, in);
}

static char *dump(const struct rbx_dockerfile *df)
{
    struct out o = {calloc(1, 1), 0};
    if (df->escape != '\\')
        put(&o, "escape=%c\n", df->escape);
    if (df->syntax)
        put(&o, "syntax=%s\n", df->syntax);
    for (size_t i = 0; i < df->n_global_args; i++) {
        put_instr(&o, &df->global_args[i]);
        put(&o, "\n");
    }
    for (size_t s = 0; s < df->n_stages; s++) {
        put_instr(&o, &df->stages[s].from);
        put(&o, "\n");
        for (size_t i = 0; i < df->stages[s].n_instrs; i++) {
            put(&o, "  ");
            put_instr(&o, &df->stages[s].instrs[i]);
            put(&o, "\n");
        }
    }
    return o.p;
}

/* ---- valid Dockerfiles ----------------------------------------------------------------------- */

struct ok_case {
    const char *what;
    const char *text;
    const char *want;
};

static const struct ok_case ok_cases[] = {
    {"minimal, case-insensitive instructions, comments and blank lines",
     "# a comment\n\nfrom alpine\n  # indented comment\nRun echo hi\n\ncmd [\"sh\"]\n",
     "3:1 FROM \"alpine\"\n"
     "  5:1 RUN shell[\"echo hi\"]\n"
     "  7:1 CMD exec[\"sh\"]\n"},
    {"FROM with platform and stage name; AS in any case",
     "FROM --platform=$BUILDPLATFORM golang:1.22 As Builder\nFROM scratch\n",
     "1:1 FROM \"golang:1.22\" AS builder platform=\"$BUILDPLATFORM\"\n"
     "2:1 FROM \"scratch\"\n"},
    {"global ARGs before the first FROM",
     "ARG BASE=alpine\nARG TAG\nFROM ${BASE}:${TAG}\nARG TAG\n",
     "1:1 ARG \"BASE\"=\"alpine\"\n"
     "2:1 ARG \"TAG\"\n"
     "3:1 FROM \"${BASE}:${TAG}\"\n"
     "  4:1 ARG \"TAG\"\n"},
    {"line continuations keep the following lines' indentation; comment lines inside are dropped",
     "FROM a\nRUN apt-get update && \\\n    # refresh\n    apt-get install -y \\\n      curl\n",
     "1:1 FROM \"a\"\n"
     "  2:1 RUN shell[\"apt-get update &&     apt-get install -y       curl\"]\n"},
    {"blank lines inside a continuation are skipped; a trailing continuation at EOF is fine",
     "FROM a\nRUN echo a \\\n\n   \nb \\",
     "1:1 FROM \"a\"\n"
     "  2:1 RUN shell[\"echo a b\"]\n"},
    {"an escaped escape at the end of a line is no continuation",
     "FROM a\nRUN echo a\\\\\nRUN echo b\n",
     "1:1 FROM \"a\"\n"
     "  2:1 RUN shell[\"echo a\\\\\\\\\"]\n"
     "  3:1 RUN shell[\"echo b\"]\n"},
    {"the escape directive switches continuations to the backtick",
     "# escape=`\nFROM windows\nRUN dir c:\\ `\n  /b\n",
     "escape=`\n"
     "2:1 FROM \"windows\"\n"
     "  3:1 RUN shell[\"dir c:\\\\   /b\"]\n"},
    {"directives: syntax recorded, keys in any case, leading blanks allowed",
     "  # SYNTAX = docker/dockerfile:1\n# Escape=\\\nFROM a\n",
     "syntax=docker/dockerfile:1\n"
     "3:1 FROM \"a\"\n"},
    {"a directive after a comment is a comment", "# hello\n# escape=`\nFROM a\nRUN a \\\n b\n",
     "3:1 FROM \"a\"\n"
     "  4:1 RUN shell[\"a  b\"]\n"},
    {"CRLF line endings and a byte-order mark",
     "\xef\xbb\xbf"
     "FROM a\r\nRUN x \\\r\n  y\r\n",
     "1:1 FROM \"a\"\n"
     "  2:1 RUN shell[\"x   y\"]\n"},
    {"JSON forms; invalid JSON falls back to the shell form",
     "FROM a\nENTRYPOINT [\"/bin/app\", \"--flag\"]\nCMD ['single', 'quotes']\n"
     "RUN [\"echo\", \"x\"] # trailing\nCMD []\nSHELL [\"/bin/bash\", \"-c\"]\n",
     "1:1 FROM \"a\"\n"
     "  2:1 ENTRYPOINT exec[\"/bin/app\" \"--flag\"]\n"
     "  3:1 CMD shell[\"['single', 'quotes']\"]\n"
     "  4:1 RUN shell[\"[\\\"echo\\\", \\\"x\\\"] # trailing\"]\n"
     "  5:1 CMD exec[]\n"
     "  6:1 SHELL exec[\"/bin/bash\" \"-c\"]\n"},
    {"RUN flags: several --mount, --network, --security, and -- ending the flags",
     "FROM a\nRUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=tok "
     "--network=none --security=sandbox go build\nRUN -- --version\n",
     "1:1 FROM \"a\"\n"
     "  2:1 RUN shell[\"go build\"] mount=\"type=cache,target=/root/.cache\" "
     "mount=\"type=secret,id=tok\" network=none security=sandbox\n"
     "  3:1 RUN shell[\"--version\"]\n"},
    {"flag values may be quoted", "FROM a\nRUN --mount=\"type=bind,source=my dir,target=/x\" ls\n",
     "1:1 FROM \"a\"\n"
     "  2:1 RUN shell[\"ls\"] mount=\"type=bind,source=my dir,target=/x\"\n"},
    {"COPY and ADD: several sources, flags, JSON form",
     "FROM a AS build\nFROM b\nCOPY --from=build --chown=app:app --chmod=0755 --link a b /dst/\n"
     "COPY [\"with space\", \"/dst\"]\nADD --checksum=sha256:abc --keep-git-dir --unpack=false "
     "https://x/y.tar /z\nCOPY --parents --exclude=*.md --exclude=tmp ./src/ /app\n",
     "1:1 FROM \"a\" AS build\n"
     "2:1 FROM \"b\"\n"
     "  3:1 COPY [\"a\" \"b\"] -> \"/dst/\" from=build chown=app:app chmod=0755 link\n"
     "  4:1 COPY exec [\"with space\"] -> \"/dst\"\n"
     "  5:1 ADD [\"https://x/y.tar\"] -> \"/z\" checksum=sha256:abc keep-git-dir unpack=false\n"
     "  6:1 COPY [\"./src/\"] -> \"/app\" parents exclude=[\"*.md\" \"tmp\"]\n"},
    {"ENV and LABEL: pairs with quotes kept for substitution, and the legacy form",
     "FROM a\nENV A=1 B=\"two words\" C='x y' D=a\\ b\nENV LEGACY value with  spaces\n"
     "LABEL org.opencontainers.image.title=\"reprobox\" version=1\nLABEL \"quoted key\"=v\n",
     "1:1 FROM \"a\"\n"
     "  2:1 ENV \"A\"=\"1\" \"B\"=\"\\\"two words\\\"\" \"C\"=\"'x y'\" \"D\"=\"a\\\\ b\"\n"
     "  3:1 ENV \"LEGACY\"=\"value with  spaces\"\n"
     "  4:1 LABEL \"org.opencontainers.image.title\"=\"\\\"reprobox\\\"\" \"version\"=\"1\"\n"
     "  5:1 LABEL \"\\\"quoted key\\\"\"=\"v\"\n"},
    {"ARG with and without defaults, several on one line", "FROM a\nARG A B=2 C=\"x y\" D=\n",
     "1:1 FROM \"a\"\n"
     "  2:1 ARG \"A\" \"B\"=\"2\" \"C\"=\"\\\"x y\\\"\" \"D\"=\"\"\n"},
    {"WORKDIR, USER, STOPSIGNAL take the rest of the line; MAINTAINER becomes a label",
     "FROM a\nWORKDIR /my app\nUSER app:app\nSTOPSIGNAL SIGTERM\nMAINTAINER Jane <j@x.org>\n",
     "1:1 FROM \"a\"\n"
     "  2:1 WORKDIR \"/my app\"\n"
     "  3:1 USER \"app:app\"\n"
     "  4:1 STOPSIGNAL \"SIGTERM\"\n"
     "  5:1 MAINTAINER \"maintainer\"=\"Jane <j@x.org>\"\n"},
    {"EXPOSE is sorted as Docker sorts it; VOLUME in both forms",
     "FROM a\nEXPOSE 8080/udp 443 80\nVOLUME /data /logs\nVOLUME [\"/a b\", \" /c \"]\n",
     "1:1 FROM \"a\"\n"
     "  2:1 EXPOSE [\"443\" \"80\" \"8080/udp\"]\n"
     "  3:1 VOLUME [\"/data\" \"/logs\"]\n"
     "  4:1 VOLUME exec [\"/a b\" \"/c\"]\n"},
    {"HEALTHCHECK: NONE, shell and exec forms, durations and retries",
     "FROM a\nHEALTHCHECK NONE\nHEALTHCHECK --interval=30s --timeout=1m30s --start-period=1.5s "
     "--start-interval=500ms --retries=3 CMD curl -f http://localhost/\n"
     "healthcheck cmd [\"/bin/check\"]\n",
     "1:1 FROM \"a\"\n"
     "  2:1 HEALTHCHECK NONE\n"
     "  3:1 HEALTHCHECK shell[\"curl -f http://localhost/\"] interval=30000000000 "
     "timeout=90000000000 start-period=1500000000 start-interval=500000000 retries=3\n"
     "  4:1 HEALTHCHECK exec[\"/bin/check\"]\n"},
    {"ONBUILD records the trigger text and parses it",
     "FROM a\nONBUILD COPY . /app\nonbuild run [\"make\"]\n",
     "1:1 FROM \"a\"\n"
     "  2:1 ONBUILD \"COPY . /app\" { 2:9 COPY [\".\"] -> \"/app\" }\n"
     "  3:1 ONBUILD \"run [\\\"make\\\"]\" { 3:9 RUN exec[\"make\"] }\n"},
    {"a heredoc on RUN",
     "FROM a\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\nRUN echo after\n",
     "1:1 FROM \"a\"\n"
     "  2:1 RUN shell[\"<<EOF\"] <<EOF=\"apt-get update\\napt-get install -y curl\\n\"\n"
     "  6:1 RUN shell[\"echo after\"]\n"},
    {"heredoc bodies keep comments and blank lines; <<- strips tabs from the delimiter line",
     "FROM a\nRUN <<-END cat > /x\n\t# not a comment\n\n\tEND\n",
     "1:1 FROM \"a\"\n"
     "  2:1 RUN shell[\"<<-END cat > /x\"] <<-END=\"\\t# not a comment\\n\\n\"\n"},
    {"quoted delimiters turn expansion off; a descriptor number is kept",
     "FROM a\nRUN <<\"EOF\" 3<<'X' python3\nprint(1)\nEOF\nx\nX\n",
     "1:1 FROM \"a\"\n"
     "  2:1 RUN shell[\"<<\\\"EOF\\\" 3<<'X' python3\"] <<'EOF=\"print(1)\\n\" "
     "<<'X(fd=3)=\"x\\n\"\n"},
    {"several heredocs on one line, read in order",
     "FROM a\nRUN cat <<A > a; cat <<B > b\n1\nA\n2\nB\n",
     "1:1 FROM \"a\"\n"
     "  2:1 RUN shell[\"cat <<A > a; cat <<B > b\"] <<A=\"1\\n\" <<B=\"2\\n\"\n"},
    {"COPY <<EOF /dest makes an inline file; other sources stay paths",
     "FROM a\nCOPY --chmod=0644 <<conf.ini local.txt /etc/app/\n[x]\ny=1\nconf.ini\n",
     "1:1 FROM \"a\"\n"
     "  2:1 COPY [\"local.txt\"] -> \"/etc/app/\" chmod=0644 <<conf.ini=\"[x]\\ny=1\\n\"\n"},
    {"<< must start a word; JSON forms have no heredocs",
     "FROM a\nRUN cat<<EOF\nRUN [\"cat\", \"<<EOF\"]\n",
     "1:1 FROM \"a\"\n"
     "  2:1 RUN shell[\"cat<<EOF\"]\n"
     "  3:1 RUN exec[\"cat\" \"<<EOF\"]\n"},
    {"a heredoc on an ONBUILD trigger", "FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\n",
     "1:1 FROM \"a\"\n"
     "  2:1 ONBUILD \"RUN <<EOF\\necho hi\\nEOF\" { 2:9 RUN shell[\"<<EOF\"] <<EOF=\"echo hi\\n\" "
     "}\n"},
    {"several stages keep their own instructions",
     "FROM golang AS build\nRUN go build -o /out/app\nFROM alpine\nCOPY --from=build /out/app "
     "/app\n"
     "ENTRYPOINT [\"/app\"]\n",
     "1:1 FROM \"golang\" AS build\n"
     "  2:1 RUN shell[\"go build -o /out/app\"]\n"
     "3:1 FROM \"alpine\"\n"
     "  4:1 COPY [\"/out/app\"] -> \"/app\" from=build\n"
     "  5:1 ENTRYPOINT exec[\"/app\"]\n"},
};

START_TEST(test_valid_dockerfiles)
{
    const struct ok_case *c = &ok_cases[_i];
    struct rbx_dockerfile *df = NULL;
    struct rbx_error *err = NULL;
    int r = rbx_dockerfile_parse(c->text, strlen(c->text), "Dockerfile", &df, &err);
    ck_assert_msg(r == 0, "%s: %s", c->what, err ? err->message : "?");
    char *got = dump(df);
    ck_assert_msg(strcmp(got, c->want) == 0, "%s:\n--- want\n%s--- got\n%s", c->what, c->want, got);
    free(got);
    rbx_dockerfile_free(df);
}
END_TEST

/* ---- broken Dockerfiles: the exact message --------------------------------------------------- */

struct bad_case {
    const char *text;
    const char *want;
};

static const struct bad_case bad_cases[] = {
    {"FROM a\nRUN x\nCOPY a /b\nENV A=1\nLABEL x=y\nWORKDIR /\nRUNN make\n",
     "Dockerfile:7:1: unknown instruction \"RUNN\" (did you mean RUN?)"},
    {"FROM a\n  FORM b\n", "Dockerfile:2:3: unknown instruction \"FORM\" (did you mean FROM?)"},
    {"FROM a\nFOOBAR x\n", "Dockerfile:2:1: unknown instruction \"FOOBAR\""},
    {"FROM a\n\nCOPY onlyone\n", "Dockerfile:3:1: COPY requires at least two arguments"},
    {"FROM a\nADD\n", "Dockerfile:2:1: ADD requires at least two arguments"},
    {"RUN make\nFROM a\n", "Dockerfile:1:1: no FROM instruction before RUN"},
    {"ARG X\nENV A=1\n", "Dockerfile:2:1: no FROM instruction before ENV"},
    {"FROM a AS builder\nRUN x\nFROM b AS BUILDER\n",
     "Dockerfile:3:1: duplicate stage name \"builder\""},
    {"FROM a\nRUN <<EOF\necho\n", "Dockerfile:2:5: unterminated heredoc \"EOF\""},
    {"FROM a\nCOPY --chwon=1:1 a /b\n",
     "Dockerfile:2:6: unknown flag \"--chwon\" for COPY (did you mean --chown?)"},
    {"FROM a\nADD --from=x a /b\n", "Dockerfile:2:5: unknown flag \"--from\" for ADD"},
    {"FROM a\nRUN --mount=type=cache,target=/x \\\n    --netwrk=none make\n",
     "Dockerfile:3:5: unknown flag \"--netwrk\" for RUN (did you mean --network?)"},
    {"FROM a\nCOPY --from=a --from=b x /y\n", "Dockerfile:2:15: duplicate flag specified: --from"},
    {"FROM a\nCOPY --from x /y\n", "Dockerfile:2:6: missing a value on flag: --from"},
    {"FROM a\nCOPY --link=maybe x /y\n",
     "Dockerfile:2:6: expecting boolean value for flag --link, not: maybe"},
    {"FROM a\nCOPY --chmod=999 x /y\n",
     "Dockerfile:2:6: invalid chmod parameter: '999'. it should be octal string and between 0 "
     "and 07777"},
    {"FROM a\nSHELL /bin/bash -c\n",
     "Dockerfile:2:7: SHELL requires the arguments to be in JSON form"},
    {"FROM a\nSHELL [\"/bin/bash\", \"-c\"\n",
     "Dockerfile:2:7: SHELL requires the arguments to be in JSON form"},
    {"FROM a\nSHELL []\n", "Dockerfile:2:1: SHELL requires at least one argument"},
    {"FROM a\nCMD [\"a\", 1]\n",
     "Dockerfile:2:5: when using JSON array syntax, arrays must be comprised of strings only"},
    {"FROM\n", "Dockerfile:1:1: FROM requires either one or three arguments"},
    {"FROM a b\n", "Dockerfile:1:1: FROM requires either one or three arguments"},
    {"FROM a AS 1st\n",
     "Dockerfile:1:1: invalid name for build stage: \"1st\", name can't start with a number or "
     "contain symbols"},
    {"FROM a\nENV\n", "Dockerfile:2:1: ENV requires at least one argument"},
    {"FROM a\nENV ONLYKEY\n", "Dockerfile:2:1: ENV must have two arguments"},
    {"FROM a\nENV A=1 B\n",
     "Dockerfile:2:5: can't find = in \"B\": ENV arguments must be of the form name=value"},
    {"FROM a\nLABEL =x\n", "Dockerfile:2:7: LABEL names can not be blank"},
    {"FROM a\nARG =x\n", "Dockerfile:2:5: ARG names can not be blank"},
    {"FROM a\nWORKDIR\n", "Dockerfile:2:1: WORKDIR requires exactly one argument"},
    {"FROM a\nEXPOSE\n", "Dockerfile:2:1: EXPOSE requires at least one argument"},
    {"FROM a\nVOLUME [\"\"]\n", "Dockerfile:2:8: VOLUME specified can not be an empty string"},
    {"FROM a\nRUN\n", "Dockerfile:2:1: RUN requires at least one argument"},
    {"FROM a\nHEALTHCHECK NONE x\n", "Dockerfile:2:1: HEALTHCHECK NONE takes no arguments"},
    {"FROM a\nHEALTHCHECK CMD\n", "Dockerfile:2:1: missing command after HEALTHCHECK CMD"},
    {"FROM a\nHEALTHCHECK RUN x\n",
     "Dockerfile:2:13: unknown type \"RUN\" in HEALTHCHECK (try CMD)"},
    {"FROM a\nHEALTHCHECK --interval=5x CMD x\n",
     "Dockerfile:2:13: invalid duration \"5x\" for --interval"},
    {"FROM a\nHEALTHCHECK --timeout=100us CMD x\n",
     "Dockerfile:2:13: --timeout cannot be less than 1ms"},
    {"FROM a\nHEALTHCHECK --retries=0 CMD x\n",
     "Dockerfile:2:13: --retries must be at least 1 (not 0)"},
    {"FROM a\nONBUILD ONBUILD RUN x\n",
     "Dockerfile:2:9: chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"},
    {"FROM a\nONBUILD FROM b\n", "Dockerfile:2:9: FROM isn't allowed as an ONBUILD trigger"},
    {"FROM a\nONBUILD\n", "Dockerfile:2:1: ONBUILD requires at least one argument"},
    {"FROM a\nCOPY a <<EOF\nx\nEOF\n",
     "Dockerfile:2:1: COPY cannot accept a heredoc as a destination"},
    {"FROM a\nRUN --network=bridge x\n", "Dockerfile:2:5: unsupported network mode \"bridge\""},
    {"FROM a\nRUN --security=root x\n", "Dockerfile:2:5: unsupported security mode \"root\""},
    {"FROM a\nRUN --mount=type=cahce,target=/x make\n",
     "Dockerfile:2:5: --mount=type=cahce,target=/x: unsupported mount type \"cahce\" (did you "
     "mean cache?)"},
    {"FROM a\nRUN --mount=type=bind,target=/x \\\n  --mount=type=secret,id=a,from=b make\n",
     "Dockerfile:3:3: --mount=type=secret,id=a,from=b: secret mount should not have a from"},
    {"# escape=x\nFROM a\n", "Dockerfile:1:10: invalid escape token 'x' does not match ` or \\"},
    {"# escape=`\n# escape=\\\nFROM a\n",
     "Dockerfile:2:1: only one escape parser directive can be used"},
    {"", "Dockerfile:1:1: file with no instructions"},
    {"# only a comment\n\n", "Dockerfile:2:1: file with no instructions"},
    {"ARG A\nARG B\n", "Dockerfile:2:1: no FROM instruction: the Dockerfile has no stage to build"},
    {"FROM a\nRUN x\0y\n", "Dockerfile:2:6: NUL byte in the Dockerfile"},
};

START_TEST(test_broken_dockerfiles)
{
    const struct bad_case *c = &bad_cases[_i];
    struct rbx_dockerfile *df = NULL;
    struct rbx_error *err = NULL;
    size_t len = strlen(c->text);
    if (strstr(c->want, "NUL byte"))
        len = strlen(c->text) + 1 + strlen(c->text + strlen(c->text) + 1);
    int r = rbx_dockerfile_parse(c->text, len, "Dockerfile", &df, &err);
    ck_assert_msg(r < 0, "parsed, but wanted: %s", c->want);
    ck_assert_ptr_null(df);
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(err->message, c->want);
    ck_assert_str_eq(rbx_error_kind_name(err->kind), "malformed");
    rbx_error_free(err);
}
END_TEST

/* ---- bounds ---------------------------------------------------------------------------------- */

static void expect_limit(const char *text, size_t len, const char *want)
{
    struct rbx_dockerfile *df = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_dockerfile_parse(text, len, "Dockerfile", &df, &err), 0);
    ck_assert_error(err, RBX_ERR_LIMIT, want);
    rbx_error_free(err);
}

START_TEST(test_bound_file_size)
{
    size_t len = RBX_DF_MAX_SIZE + 1;
    char *big = malloc(len);
    memset(big, '#', len);
    expect_limit(big, len, "Dockerfile: file is 4.0 MiB, larger than the 4 MiB limit");
    free(big);
}
END_TEST

START_TEST(test_bound_line_length)
{
    size_t n = RBX_DF_MAX_LINE + 10;
    char *text = malloc(n + 32);
    strcpy(text, "FROM a\nRUN ");
    memset(text + 11, 'x', n);
    text[11 + n] = '\0';
    expect_limit(text, strlen(text), "Dockerfile:2:1: line longer than 65535 bytes");
    free(text);
}
END_TEST

START_TEST(test_bound_instruction_count)
{
    size_t n = RBX_DF_MAX_INSTRUCTIONS + 5;
    char *text = malloc(8 * n + 16);
    char *q = text + sprintf(text, "FROM a\n");
    for (size_t i = 0; i < n; i++)
        q += sprintf(q, "USER x\n");
    expect_limit(text, strlen(text), "Dockerfile:10001:1: more than 10000 instructions");
    free(text);
}
END_TEST

START_TEST(test_bound_heredoc_size)
{
    size_t lines = (RBX_DF_MAX_HEREDOC / 64) + 2;
    char *text = malloc(lines * 65 + 64);
    char *q = text + sprintf(text, "FROM a\nRUN <<EOF\n");
    for (size_t i = 0; i < lines; i++) {
        memset(q, 'y', 63);
        q[63] = '\n';
        q += 64;
    }
    strcpy(q, "EOF\n");
    expect_limit(text, strlen(text), "Dockerfile:2:5: heredoc \"EOF\" larger than 1048576 bytes");
    free(text);
}
END_TEST

/* ---- the rest of the contract ---------------------------------------------------------------- */

START_TEST(test_locations_span_continuations_and_heredocs)
{
    const char *text = "FROM a\nRUN a \\\n  b\nCOPY <<X /x\n1\nX\nUSER u\n";
    struct rbx_dockerfile *df = NULL;
    ck_assert_int_eq(rbx_dockerfile_parse(text, strlen(text), "Dockerfile", &df, NULL), 0);
    const struct rbx_df_stage *st = &df->stages[0];
    ck_assert_uint_eq(st->n_instrs, 3);
    ck_assert_uint_eq(st->instrs[0].line, 2);
    ck_assert_uint_eq(st->instrs[0].end_line, 3);
    ck_assert_str_eq(st->instrs[0].original, "RUN a   b");
    ck_assert_uint_eq(st->instrs[1].line, 4);
    ck_assert_uint_eq(st->instrs[1].end_line, 6);
    ck_assert_uint_eq(st->instrs[2].line, 7);
    rbx_dockerfile_free(df);
}
END_TEST

START_TEST(test_error_column_on_a_continuation_line)
{
    const char *text = "FROM a\nCOPY --link \\\n     --chown=1 \\\n     --chmod=7777x a /b\n";
    struct rbx_dockerfile *df = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_dockerfile_parse(text, strlen(text), "ctx/Dockerfile.dev", &df, &err), 0);
    ck_assert_str_eq(err->message,
                     "ctx/Dockerfile.dev:4:6: invalid chmod parameter: '7777x'. it should be octal "
                     "string and between 0 and 07777");
    rbx_error_free(err);
}
END_TEST

START_TEST(test_kind_names_parse_back)
{
    for (int k = RBX_DF_FROM; k <= RBX_DF_ONBUILD; k++) {
        const char *name = rbx_df_kind_name((enum rbx_df_kind)k);
        char text[128];
        snprintf(text, sizeof(text), "FROM a\n%s %s\n", name,
                 k == RBX_DF_FROM                       ? "b"
                 : k == RBX_DF_COPY || k == RBX_DF_ADD  ? "a b"
                 : k == RBX_DF_SHELL                    ? "[\"sh\"]"
                 : k == RBX_DF_HEALTHCHECK              ? "NONE"
                 : k == RBX_DF_ONBUILD                  ? "RUN x"
                 : k == RBX_DF_ENV || k == RBX_DF_LABEL ? "a=b"
                                                        : "x");
        struct rbx_dockerfile *df = NULL;
        struct rbx_error *err = NULL;
        ck_assert_msg(rbx_dockerfile_parse(text, strlen(text), NULL, &df, &err) == 0, "%s: %s",
                      text, err ? err->message : "?");
        const struct rbx_df_instr *in =
            k == RBX_DF_FROM ? &df->stages[1].from : &df->stages[0].instrs[0];
        ck_assert_int_eq(in->kind, k);
        rbx_dockerfile_free(df);
    }
    ck_assert_str_eq(rbx_df_kind_name((enum rbx_df_kind)99), "?");
}
END_TEST

START_TEST(test_find_stage_by_name_or_index)
{
    const char *text = "FROM a AS base\nFROM base AS Build\nFROM scratch\n";
    struct rbx_dockerfile *df = NULL;
    ck_assert_int_eq(rbx_dockerfile_parse(text, strlen(text), NULL, &df, NULL), 0);
    ck_assert_str_eq(df->name, "Dockerfile");
    ck_assert_int_eq(rbx_dockerfile_find_stage(df, "base"), 0);
    ck_assert_int_eq(rbx_dockerfile_find_stage(df, "BUILD"), 1);
    ck_assert_int_eq(rbx_dockerfile_find_stage(df, "2"), 2);
    ck_assert_int_eq(rbx_dockerfile_find_stage(df, "3"), -1);
    ck_assert_int_eq(rbx_dockerfile_find_stage(df, "nope"), -1);
    ck_assert_int_eq(rbx_dockerfile_find_stage(df, ""), -1);
    rbx_dockerfile_free(df);
}
END_TEST

START_TEST(test_heredoc_body_chomp)
{
    struct rbx_df_heredoc h = {
        .name = "EOF", .content = "\t\tline1\n\tline2\n  keep\n", .chomp = true};
    char *b = rbx_df_heredoc_body(&h);
    ck_assert_str_eq(b, "line1\nline2\n  keep\n");
    free(b);
    h.chomp = false;
    b = rbx_df_heredoc_body(&h);
    ck_assert_str_eq(b, h.content);
    free(b);
}
END_TEST

START_TEST(test_instr_copy_is_deep)
{
    const char *text = "FROM a\nRUN --mount=type=cache,target=/c <<EOF\nx\nEOF\n"
                       "ONBUILD COPY --chown=a <<F /f\ny\nF\n";
    struct rbx_dockerfile *df = NULL;
    ck_assert_int_eq(rbx_dockerfile_parse(text, strlen(text), NULL, &df, NULL), 0);
    struct rbx_df_instr a = {0}, b = {0};
    rbx_df_instr_copy(&df->stages[0].instrs[0], &a);
    rbx_df_instr_copy(&df->stages[0].instrs[1], &b);
    rbx_dockerfile_free(df);
    ck_assert_str_eq(a.run.mounts[0].target, "/c");
    ck_assert_str_eq(a.heredocs[0].content, "x\n");
    ck_assert_str_eq(b.onbuild.trigger->heredocs[0].name, "F");
    ck_assert_str_eq(b.onbuild.trigger->copy.chown, "a");
    rbx_df_instr_clear(&a);
    rbx_df_instr_clear(&b);
}
END_TEST

/* Inputs that once broke the parser, kept so they never do again. */
static const char *const hostile[] = {
    "FROM a\nRUN \\",
    "FROM a\n\\\n",
    "FROM a\nRUN <<",
    "FROM a\nRUN <<\"\n",
    "FROM a\nCOPY <<- /x\n",
    "FROM a\nRUN [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
    "FROM a\nRUN --mount=\n",
    "FROM a\nRUN --mount=\"\n",
    "FROM a\nRUN -- \n",
    "FROM a\nONBUILD ONBUILD\n",
    "FROM a\nHEALTHCHECK --interval=1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h CMD x\n",
    "FROM a\nHEALTHCHECK --interval=99999999999999999999999h CMD x\n",
    "\xef\xbb\xbf",
    "FROM a\nENV \"\n",
    "FROM a\nLABEL a=\\",
    "FROM a\nRUN <<EOF <<EOF\nEOF\nEOF\n",
    "FROM \xff\xfe\nRUN \xc3\n",
};

START_TEST(test_hostile_inputs_do_not_crash)
{
    struct rbx_dockerfile *df = NULL;
    struct rbx_error *err = NULL;
    int r = rbx_dockerfile_parse(hostile[_i], strlen(hostile[_i]), NULL, &df, &err);
    ck_assert(r == 0 ? df != NULL && err == NULL : df == NULL && err != NULL);
    rbx_dockerfile_free(df);
    rbx_error_free(err);
}
END_TEST

/* Every file of the fuzzing corpus (seeds and any input that ever broke the parser) goes through
 * the parser and substitution in every build, not only in fuzzing builds. */
START_TEST(test_corpus_replays)
{
    const char *src = getenv("RBX_SOURCE_DIR");
    if (!src)
        return;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/tests/corpus/dockerfile", src);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s", dir);
    size_t seen = 0;
    char *env[] = {"A=a b", NULL};
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char *data = NULL;
        size_t len = 0;
        int dfd = dirfd(d);
        ck_assert_int_eq(rbx_read_file_at(dfd, e->d_name, RBX_DF_MAX_SIZE + 1, &data, &len, NULL),
                         0);
        struct rbx_dockerfile *df = NULL;
        struct rbx_error *err = NULL;
        if (rbx_dockerfile_parse(data, len, e->d_name, &df, &err) == 0) {
            for (size_t st = 0; st < df->n_stages; st++) {
                for (size_t i = 0; i < df->stages[st].n_instrs; i++) {
                    struct rbx_df_instr o = {0};
                    struct rbx_error *xerr = NULL;
                    if (rbx_df_instr_expand(&df->stages[st].instrs[i], df->escape,
                                            rbx_df_lookup_env, env, &o, &xerr) == 0)
                        rbx_df_instr_clear(&o);
                    rbx_error_free(xerr);
                }
            }
        }
        rbx_error_free(err);
        rbx_dockerfile_free(df);
        struct rbx_ignore *ign = NULL;
        err = NULL;
        if (rbx_ignore_parse(data, len, e->d_name, &ign, &err) == 0)
            rbx_ignore_match(ign, "a/b", true);
        rbx_error_free(err);
        rbx_ignore_free(ign);
        free(data);
        seen++;
    }
    closedir(d);
    ck_assert_uint_gt(seen, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("builder_dockerfile");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, test_valid_dockerfiles, 0, (int)RBX_ARRAY_SIZE(ok_cases));
    tcase_add_loop_test(tc, test_broken_dockerfiles, 0, (int)RBX_ARRAY_SIZE(bad_cases));
    tcase_add_test(tc, test_bound_file_size);
    tcase_add_test(tc, test_bound_line_length);
    tcase_add_test(tc, test_bound_instruction_count);
    tcase_add_test(tc, test_bound_heredoc_size);
    tcase_add_test(tc, test_locations_span_continuations_and_heredocs);
    tcase_add_test(tc, test_error_column_on_a_continuation_line);
    tcase_add_test(tc, test_kind_names_parse_back);
    tcase_add_test(tc, test_find_stage_by_name_or_index);
    tcase_add_test(tc, test_heredoc_body_chomp);
    tcase_add_test(tc, test_instr_copy_is_deep);
    tcase_add_loop_test(tc, test_hostile_inputs_do_not_crash, 0, (int)RBX_ARRAY_SIZE(hostile));
    tcase_add_test(tc, test_corpus_replays);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
