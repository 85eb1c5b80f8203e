/* test_sandbox_oci.c — oci.c: a spec written as config.json reads back as the same run, the
 * seccomp profile and capabilities go with it, and fields reprobox does not run are refused by
 * their JSON path. Also caps.c's names and rlimits, and the seccomp profile forms. */
#include "sandbox/seccomp-internal.h"

#include "sandbox_testlib.h"

#include <sys/resource.h>

static struct rbx_spec sample(void)
{
    struct rbx_spec s;
    rbx_spec_init(&s);
    rbx_strv_push(&s.argv, "sh");
    rbx_strv_push(&s.argv, "-c");
    rbx_strv_push(&s.argv, "echo hi");
    rbx_strv_push(&s.env, "PATH=/bin");
    s.cwd = rbx_xstrdup("/srv");
    s.user = rbx_xstrdup("1000:1000");
    s.hostname = rbx_xstrdup("api-1");
    s.limits.memory_bytes = 64 << 20;
    s.limits.pids = 100;
    s.limits.cpu_millis = 1500;
    rbx_strv_push(&s.cap_drop, "ALL");
    rbx_strv_push(&s.cap_add, "CHOWN");
    rbx_strv_push(&s.cap_add, "kill");
    s.rlimits = rbx_xcalloc(1, sizeof(*s.rlimits));
    s.rlimits[0] = (struct rbx_rlimit){RLIMIT_NOFILE, 100, 200};
    s.n_rlimits = 1;
    s.n_mounts = 1;
    s.mounts = rbx_xcalloc(1, sizeof(*s.mounts));
    s.mounts[0] = (struct rbx_mount_spec){rbx_xstrdup("/tmp"), rbx_xstrdup("/data"), rbx_xstrdup("bind"),
                                          true};
    return s;
}

START_TEST(test_spec_round_trips_through_config_json)
{
    struct rbx_spec s = sample();
    _cleanup_error_ struct rbx_error *err = NULL;
    json_t *cfg = NULL;
    ck_assert_int_eq(rbx_spec_to_oci_config(&s, -1, "rootfs", &cfg, &err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(cfg, "root"), "path")),
                     "rootfs");
    json_t *caps = json_object_get(json_object_get(json_object_get(cfg, "process"),
                                                   "capabilities"),
                                   "bounding");
    ck_assert_int_eq(json_array_size(caps), 2);
    ck_assert_str_eq(json_string_value(json_array_get(caps, 0)), "CAP_CHOWN");
    ck_assert_str_eq(json_string_value(json_array_get(caps, 1)), "CAP_KILL");

    struct rbx_spec back;
    rbx_spec_init(&back);
    ck_assert_msg(rbx_spec_from_oci_config(cfg, "/b", &back, &err) == 0, "%s", err->message);
    ck_assert_str_eq(back.rootfs_dir, "/b/rootfs");
    ck_assert_str_eq(back.argv[2], "echo hi");
    ck_assert_str_eq(back.cwd, "/srv");
    ck_assert_str_eq(back.user, "1000:1000");
    ck_assert(back.groups_explicit);
    ck_assert_str_eq(back.hostname, "api-1");
    ck_assert_int_eq(back.network, RBX_NETWORK_NONE);
    ck_assert_uint_eq(back.limits.memory_bytes, 64 << 20);
    ck_assert_int_eq(back.limits.pids, 100);
    ck_assert_uint_eq(back.limits.cpu_millis, 1500);
    uint64_t a, b;
    ck_assert_int_eq(rbx_caps_resolve(s.cap_add, s.cap_drop, &a, &err), 0);
    ck_assert_int_eq(rbx_caps_resolve(back.cap_add, back.cap_drop, &b, &err), 0);
    ck_assert_uint_eq(a, b);
    ck_assert_int_eq(back.n_mounts, 1);
    ck_assert_str_eq(back.mounts[0].target, "/data");
    ck_assert(back.mounts[0].readonly);
    ck_assert_int_eq(back.seccomp_mode, RBX_SECCOMP_PROFILE);
    /* HOME came from the user (the bundle is complete); the env gained it. */
    ck_assert_ptr_nonnull(rbx_env_get(back.env, "HOME"));
    int nofile = 0;
    for (size_t i = 0; i < back.n_rlimits; i++)
        if (back.rlimits[i].resource == RLIMIT_NOFILE)
            nofile = (int)back.rlimits[i].soft;
    ck_assert_int_eq(nofile, 100);
    json_decref(cfg);
    rbx_spec_clear(&back);
    rbx_spec_clear(&s);
}
END_TEST

/* The profile in config.json is the default one resolved for the process's capabilities. */
START_TEST(test_seccomp_in_config_follows_the_capabilities)
{
    struct rbx_spec s = sample();
    _cleanup_error_ struct rbx_error *err = NULL;
    json_t *cfg = NULL;
    ck_assert_int_eq(rbx_spec_to_oci_config(&s, -1, "rootfs", &cfg, &err), 0);
    json_t *sc = json_object_get(json_object_get(cfg, "linux"), "seccomp");
    ck_assert_str_eq(json_string_value(json_object_get(sc, "defaultAction")), "SCMP_ACT_ERRNO");
    ck_assert_int_eq(json_integer_value(json_object_get(sc, "defaultErrnoRet")), EPERM);
    _cleanup_free_ char *text = json_dumps(sc, 0);
    ck_assert_ptr_null(strstr(text, "\"mount\""));
    ck_assert_ptr_nonnull(strstr(text, "\"clone3\""));
    json_decref(cfg);
    rbx_strv_push(&s.cap_add, "SYS_ADMIN");
    ck_assert_int_eq(rbx_spec_to_oci_config(&s, -1, "rootfs", &cfg, &err), 0);
    free(text);
    text = json_dumps(json_object_get(json_object_get(cfg, "linux"), "seccomp"), 0);
    ck_assert_ptr_nonnull(strstr(text, "\"mount\""));
    json_decref(cfg);
    rbx_spec_clear(&s);
}
END_TEST

static void expect_refused(const char *patch_key, json_t *value, const char *needle)
{
    struct rbx_spec s = sample();
    _cleanup_error_ struct rbx_error *err = NULL;
    json_t *cfg = NULL;
    ck_assert_int_eq(rbx_spec_to_oci_config(&s, -1, "rootfs", &cfg, &err), 0);
    /* "a.b": set cfg[a][b]. */
    _cleanup_free_ char *k = rbx_xstrdup(patch_key);
    char *dot = strchr(k, '.');
    json_t *obj = cfg;
    if (dot) {
        *dot = '\0';
        obj = json_object_get(cfg, k);
        json_object_set_new(obj, dot + 1, value);
    } else {
        json_object_set_new(cfg, k, value);
    }
    struct rbx_spec back;
    rbx_spec_init(&back);
    ck_assert_int_lt(rbx_spec_from_oci_config(cfg, "/b", &back, &err), 0);
    ck_assert_msg(strstr(err->message, needle), "\"%s\" lacks \"%s\"", err->message, needle);
    json_decref(cfg);
    rbx_spec_clear(&back);
    rbx_spec_clear(&s);
}

START_TEST(test_unsupported_fields_refused_by_path)
{
    expect_refused("process.apparmorProfile", json_string("x"),
                   "/b/config.json: process.apparmorProfile: not supported");
    expect_refused("linux.sysctl", json_object(), "linux.sysctl: not supported");
    expect_refused("process.noNewPrivileges", json_false(), "always sets no_new_privs");
    expect_refused("hooks", json_object(), "hooks: not supported");
    json_t *ns = json_array();
    json_t *n = json_object();
    json_object_set_new(n, "type", json_string("network"));
    json_object_set_new(n, "path", json_string("/proc/1/ns/net"));
    json_array_append_new(ns, n);
    expect_refused("linux.namespaces", ns, "linux.namespaces[0]: joining an existing namespace");
    json_t *masked = json_array();
    json_array_append_new(masked, json_string("/etc/shadow"));
    expect_refused("linux.maskedPaths", masked, "linux.maskedPaths[0]");
    expect_refused("process.cwd", json_string("relative"), "process.cwd: expected an absolute");
}
END_TEST

START_TEST(test_caps_names)
{
    ck_assert_str_eq(rbx_cap_name(0), "CAP_CHOWN");
    ck_assert_str_eq(rbx_cap_name(21), "CAP_SYS_ADMIN");
    ck_assert_ptr_null(rbx_cap_name(63));
    uint64_t caps;
    _cleanup_error_ struct rbx_error *err = NULL;
    char *add[] = {"net_raw", "CAP_SYS_PTRACE", NULL};
    char *drop[] = {"chown", NULL};
    ck_assert_int_eq(rbx_caps_resolve(add, drop, &caps, &err), 0);
    ck_assert_uint_eq(caps, (RBX_DEFAULT_CAPS & ~1ULL) | (1ULL << 13) | (1ULL << 19));
    char *bad[] = {"CAP_FLY", NULL};
    ck_assert_int_lt(rbx_caps_resolve(bad, NULL, &caps, &err), 0);
    ck_assert_error(err, RBX_ERR_USAGE, "--cap-add CAP_FLY: unknown capability");
    char buf[256];
    rbx_caps_format((1ULL << 0) | (1ULL << 5), buf, sizeof(buf));
    ck_assert_str_eq(buf, "CAP_CHOWN,CAP_KILL");
}
END_TEST

START_TEST(test_rlimits_plan)
{
    struct rbx_rlimit out[RBX_MAX_RLIMITS];
    size_t n = 0;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_rlimits_plan(NULL, 0, out, &n, &err), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(out[0].resource, RLIMIT_NOFILE);
    ck_assert_uint_eq(out[0].soft, 1024);
    struct rlimit ours;
    getrlimit(RLIMIT_NOFILE, &ours);
    ck_assert_uint_le(out[0].hard, ours.rlim_max);
    struct rbx_rlimit in[2] = {{RLIMIT_CORE, 1, 2}, {RLIMIT_CORE, 0, 0}};
    ck_assert_int_eq(rbx_rlimits_plan(in, 2, out, &n, &err), 0);
    ck_assert_int_eq(n, 2); /* core once (the last wins), nofile by default */
    ck_assert_uint_eq(out[0].soft, 0);
    struct rbx_rlimit r;
    ck_assert_int_eq(rbx_rlimit_parse("nproc=-1", &r, &err), 0);
    ck_assert_uint_eq(r.soft, RLIM_INFINITY);
    ck_assert_int_eq(rbx_rlimit_parse("RLIMIT_STACK=8192:16384", &r, &err), 0);
    ck_assert_int_eq(r.resource, RLIMIT_STACK);
}
END_TEST

/* Docker's own JSON format, both the old "name" and the "names" form, includes/excludes. */
START_TEST(test_seccomp_profile_forms)
{
    const char *text =
        "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,"
        "\"archMap\":[{\"architecture\":\"SCMP_ARCH_X86_64\",\"subArchitectures\":"
        "[\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"]},{\"architecture\":\"SCMP_ARCH_AARCH64\","
        "\"subArchitectures\":[\"SCMP_ARCH_ARM\"]}],"
        "\"syscalls\":[{\"name\":\"read\",\"action\":\"SCMP_ACT_ALLOW\"},"
        "{\"names\":[\"mount\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":"
        "[\"CAP_SYS_ADMIN\"]}},"
        "{\"names\":[\"clone\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":"
        "2114060288,\"valueTwo\":0,\"op\":\"SCMP_CMP_MASKED_EQ\"}],\"excludes\":{\"caps\":"
        "[\"CAP_SYS_ADMIN\"],\"arches\":[\"s390x\"]}},"
        "{\"names\":[\"ptrace\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"minKernel\":"
        "\"4.8\",\"arches\":[\"amd64\"]}}]}";
    _cleanup_error_ struct rbx_error *err = NULL;
    _cleanup_json_ json_t *j = rbx_json_loadb(text, strlen(text), "p.json", &err);
    ck_assert_ptr_nonnull(j);
    _cleanup_(rbx_seccomp_freep) struct rbx_seccomp *s = NULL;
    ck_assert_msg(rbx_seccomp_from_json(j, "p.json", &s, &err) == 0, "%s", err->message);
    ck_assert_int_eq(s->n_arches, 3);
    ck_assert_int_eq(s->n_rows, 4);
    _cleanup_json_ json_t *oci = rbx_seccomp_to_oci(s, 0);
    _cleanup_free_ char *plain = json_dumps(oci, 0);
    ck_assert_ptr_null(strstr(plain, "\"mount\""));
    ck_assert_ptr_nonnull(strstr(plain, "\"clone\""));
    ck_assert_ptr_nonnull(strstr(plain, "\"ptrace\""));
    /* The compiled program starts with our ENOSYS prefix, then libseccomp's. */
    struct rbx_bpf b;
    char desc[96];
    ck_assert_int_eq(rbx_seccomp_prepare(RBX_SECCOMP_PROFILE, s, 0, NULL, &b, desc, sizeof(desc),
                                         &err),
                     0);
    ck_assert_uint_gt(b.len, 10);
    rbx_bpf_clear(&b);

    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"{}", "defaultAction: missing"},
        {"{\"defaultAction\":\"SCMP_ACT_NOTIFY\"}", "SCMP_ACT_NOTIFY needs a seccomp agent"},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[],\"action\":"
         "\"SCMP_ACT_ALLOW\"}]}",
         "syscalls[0]: no syscall names"},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"x\"],\"action\":"
         "\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":9,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
         "syscalls[0].args[0].index: expected an argument index 0-5"},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_PDP11\"]}",
         "architectures[0]: unknown architecture"},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"x\"],\"action\":"
         "\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":[\"CAP_NOPE\"]}}]}",
         "syscalls[0].includes.caps[0]: unknown capability"},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\"]}",
         "flags: seccomp filter flags are not supported"},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(bad); i++) {
        err = rbx_error_free(err);
        json_t *bj = rbx_json_loadb(bad[i].json, strlen(bad[i].json), "p.json", &err);
        ck_assert_ptr_nonnull(bj);
        struct rbx_seccomp *bs = NULL;
        ck_assert_int_lt(rbx_seccomp_from_json(bj, "p.json", &bs, &err), 0);
        ck_assert_msg(strstr(err->message, bad[i].needle), "\"%s\" lacks \"%s\"", err->message,
                      bad[i].needle);
        json_decref(bj);
    }
}
END_TEST

static Suite *oci_suite(void)
{
    Suite *s = suite_create("sandbox_oci");
    TCase *tc = tcase_create("oci");
    tcase_add_test(tc, test_spec_round_trips_through_config_json);
    tcase_add_test(tc, test_seccomp_in_config_follows_the_capabilities);
    tcase_add_test(tc, test_unsupported_fields_refused_by_path);
    tcase_add_test(tc, test_caps_names);
    tcase_add_test(tc, test_rlimits_plan);
    tcase_add_test(tc, test_seccomp_profile_forms);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(oci_suite)
