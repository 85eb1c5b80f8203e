/* cmd_spec.c — `reprobox spec [OPTIONS] IMAGE DIR [COMMAND] [ARG...]`: the run `reprobox run`
 * would make, as an OCI runtime bundle (DIR/config.json + DIR/rootfs, flattened) that runc or
 * crun run as it is, and `reprobox run --bundle DIR` runs again. */
#include "cli/cli.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static void spec_usage(FILE *out)
{
    fputs("Usage: reprobox spec [OPTIONS] IMAGE DIR [COMMAND] [ARG...]\n\n"
          "Write DIR/config.json and DIR/rootfs (the image's layers, flattened) for the run that\n"
          "`reprobox run [OPTIONS] IMAGE [COMMAND] [ARG...]` would make: same namespaces, mounts,\n"
          "masked paths, capabilities, rlimits, limits and seccomp profile. `runc run -b DIR ID`\n"
          "and `reprobox run --bundle DIR` run it. The options are those of reprobox run.\n",
          out);
}

int cmd_spec(int argc, char **argv) { return cli_spec_write(argc, argv, true); }

int cli_spec_write(int argc, char **argv, bool announce)
{
    struct cli_run_opts f = {0};
    struct rbx_error *err = NULL;
    struct rbx_store *store = NULL;
    struct rbx_image *img = NULL;
    struct rbx_run_dir *rd = NULL;
    struct rbx_container *c = NULL;
    struct rbx_compose_info info = {0};
    struct rbx_spec spec;
    int image_index = 0, r;
    _cleanup_free_ char *rootfs = NULL, *dir = NULL, *text = NULL, *withnl = NULL;
    _cleanup_json_ json_t *config = NULL;
    _cleanup_close_ int dfd = -1;
    struct rbx_spec view;
    rbx_spec_init(&view);

    rbx_spec_init(&spec);
    r = cli_run_parse(argc, argv, "spec", &f, &image_index, &err);
    if (r != 0) {
        if (r > 0)
            spec_usage(stdout);
        goto out;
    }
    if (f.bundle || f.report || f.keep) {
        r = rbx_error_set(&err, RBX_ERR_USAGE, EINVAL, "spec: --bundle, --report and --keep are for reprobox run");
        goto out;
    }
    if (image_index + 1 >= argc) {
        r = rbx_error_set(&err, RBX_ERR_USAGE, EINVAL, "spec: expected IMAGE DIR (see reprobox spec --help)");
        goto out;
    }
    dir = rbx_xstrdup(argv[image_index + 1]);
    /* The command after DIR: shift DIR out of the way of the composer. */
    argv[image_index + 1] = argv[image_index];
    r = cli_run_compose_image(&f, argc, argv, image_index + 1, &store, &img, &spec, &info, NULL, &err);
    if (r < 0)
        goto out;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        r = rbx_error_set_errno(&err, RBX_ERR_IO, errno, "spec: %s", dir);
        goto out;
    }
    rootfs = rbx_xasprintf("%s/rootfs", dir);
    struct stat st;
    if (lstat(rootfs, &st) == 0) {
        r = rbx_error_set(&err, RBX_ERR_USAGE, EEXIST, "spec: %s already exists", rootfs);
        goto out;
    }

    /* The layers, merged read-only by a container of our own, copied out flat. */
    r = rbx_run_dir_create(store, &rd, &err);
    if (r < 0)
        goto out;
    /* Writable (an upper dir, or a flat copy), so the mount points the sandbox needs land in
     * scratch space, not in the cache. */
    r = rbx_run_rootfs(store, img, rd, NULL, &view, &err);
    if (r < 0)
        goto out;
    r = rbx_container_create(&view, NULL, &c, &err);
    if (r < 0)
        goto out;
    unsigned skipped = 0;
    r = rbx_rootfs_copy(rbx_container_rootfd(c), rootfs, &skipped, &err);
    if (r < 0)
        goto out;
    if (skipped && !rbx_globals.quiet)
        cli_warn("spec: %u device node(s) of the image could not be made here and were left out", skipped);
    r = rbx_spec_to_oci_config(&spec, rbx_container_rootfd(c), "rootfs", &config, &err);
    if (r < 0)
        goto out;
    text = json_dumps(config, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    withnl = rbx_xasprintf("%s\n", text);
    dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    r = dfd < 0 ? rbx_error_set_errno(&err, RBX_ERR_IO, errno, "spec: %s", dir)
                : rbx_write_file_atomic_at(dfd, "config.json", withnl, strlen(withnl), 0644, &err);
    if (r == 0 && announce && !rbx_globals.quiet)
        fprintf(stderr, "reprobox: wrote %s/config.json and %s\n", dir, rootfs);
out:
    c = rbx_container_free(c);
    rbx_spec_clear(&view);
    rd = rbx_run_dir_close(rd, false);
    rbx_compose_info_clear(&info);
    rbx_spec_clear(&spec);
    img = rbx_image_free(img);
    store = rbx_store_free(store);
    cli_run_opts_clear(&f);
    if (r < 0)
        return cli_fail(err);
    return 0;
}
