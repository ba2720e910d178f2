// SPDX-License-Identifier: GPL-2.0
/*
 * bpf-lines [ID...]: the source line of every instruction block of loaded BPF programs, from
 * their jited line info: one "ADDRESS PROGRAM FILE:LINE SOURCE" line each, addresses in hex as
 * perf prints them. Without IDs, every loaded program with line info. tools/lineprof.py joins
 * it with perf's samples, so that time in a JIT image is read by source line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <linux/bpf.h>

/* Print the lines of program @id; 0, or -errno when it has none to give. */
static int prog_lines(__u32 id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), nl, njl, rec, i;
	struct btf *btf = NULL;
	__u64 *jited = NULL;
	char name[BPF_OBJ_NAME_LEN + 1];
	void *lines = NULL;
	int fd, err = 0;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		goto out;
	}
	nl = info.nr_line_info;
	njl = info.nr_jited_line_info;
	rec = info.line_info_rec_size;
	if (!nl || !njl || !info.btf_id || rec < sizeof(struct bpf_line_info)) {
		err = -ENODATA;
		goto out;
	}
	memcpy(name, info.name, BPF_OBJ_NAME_LEN);
	name[BPF_OBJ_NAME_LEN] = '\0';
	lines = calloc(nl, rec);
	jited = calloc(njl, sizeof(*jited));
	btf = btf__load_from_kernel_by_id(info.btf_id);
	if (!lines || !jited || !btf) {
		err = -ENOMEM;
		goto out;
	}
	memset(&info, 0, sizeof(info));
	info.nr_line_info = nl;
	info.line_info_rec_size = rec;
	info.line_info = (__u64)(unsigned long)lines;
	info.nr_jited_line_info = njl;
	info.jited_line_info_rec_size = sizeof(*jited);
	info.jited_line_info = (__u64)(unsigned long)jited;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		goto out;
	}
	/* Record i of the line info begins at the JIT address in record i of the jited one. */
	for (i = 0; i < nl && i < njl; i++) {
		const struct bpf_line_info *l = (const void *)((char *)lines + (size_t)i * rec);
		const char *file = btf__name_by_offset(btf, l->file_name_off);
		const char *src = btf__name_by_offset(btf, l->line_off);
		const char *base = file ? strrchr(file, '/') : NULL;

		printf("%llx %s %s:%u %s\n", (unsigned long long)jited[i], name,
		       base ? base + 1 : (file ? file : "?"), BPF_LINE_INFO_LINE_NUM(l->line_col),
		       src ? src : "");
	}
out:
	btf__free(btf);
	free(lines);
	free(jited);
	close(fd);
	return err;
}

int main(int argc, char **argv)
{
	__u32 id = 0;
	int i, bad = 0;

	if (argc > 1) {
		for (i = 1; i < argc; i++)
			if (prog_lines(strtoul(argv[i], NULL, 10))) {
				fprintf(stderr, "bpf-lines: program %s: no jited line info\n",
					argv[i]);
				bad = 1;
			}
		return bad;
	}
	while (!bpf_prog_get_next_id(id, &id))
		prog_lines(id); /* programs without line info have nothing to say */
	return 0;
}
