# SPDX-License-Identifier: GPL-2.0
# tapir: build the BPF objects, their skeletons and the daemon out of tree in build/.

VERSION     := 0.1.0
GIT_REV     := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
OUT         := build
CLANG       ?= clang
LLVM_STRIP  ?= llvm-strip
CC          ?= gcc
BPFTOOL     ?= bpftool
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
# Point VMLINUX_H at a checked-in or cross-built vmlinux.h to build for another kernel.
VMLINUX_H   ?= $(OUT)/vmlinux.h
ARCH        := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
CONFIG      ?= config/tapir.yaml

# user/ by role: the command and its wiring at the top, then bpf/ (loading), sources/ (where
# figures come from), families/ (metric families), expo/ (exposition, endpoint), base/.
USER_DIRS   := user user/bpf user/sources user/families user/expo user/base
PKGS        := libbpf libelf zlib libmicrohttpd yaml-0.1 libcurl json-c gnutls libcrypt libnghttp2
CFLAGS      ?= -O2 -g
WARN        := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2
ALL_CFLAGS  := $(CFLAGS) $(WARN) -std=gnu11 -D_GNU_SOURCE -MMD -MP -Iinclude $(addprefix -I,$(USER_DIRS)) -I$(OUT) \
               -DTAPIR_VERSION='"$(VERSION)"' -DTAPIR_GIT_REV='"$(GIT_REV)"' \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS      := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lbpf -lelf -lz -lmicrohttpd -lyaml -lcurl -ljson-c -lgnutls -lcrypt -lnghttp2) \
               -lpthread -lm -ldl
BPF_CFLAGS  := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Wno-unused-function \
               -Iinclude -I$(OUT) -mcpu=v3

BPF_SRCS    := $(wildcard bpf/*.bpf.c)
BPF_OBJS    := $(patsubst bpf/%.bpf.c,$(OUT)/%.bpf.o,$(BPF_SRCS))
SKELS       := $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRCS))
USER_SRCS   := $(foreach d,$(USER_DIRS),$(wildcard $(d)/*.c))
USER_OBJS   := $(patsubst user/%.c,$(OUT)/user/%.o,$(USER_SRCS))
CORE_OBJS   := $(filter-out $(OUT)/user/main.o,$(USER_OBJS))
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))
# tests/bpf: BPF objects run with BPF_PROG_TEST_RUN by a cmocka test each.
TBPF_SRCS   := $(wildcard tests/bpf/*.bpf.c)
TBPF_BINS   := $(patsubst tests/bpf/%.c,$(OUT)/tests/%,$(wildcard tests/bpf/test_*.c))
HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPER_BINS := $(patsubst tests/helpers/%.c,$(OUT)/tests/%,$(HELPER_SRCS))
# A scripted NVML, found by test_gpu next to itself.
FAKE_NVML   := $(OUT)/tests/libnvidia-ml.so.1

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SECONDARY: $(BPF_OBJS) $(patsubst tests/bpf/%.c,$(OUT)/tests/%.o,$(TBPF_SRCS)) \
	$(patsubst tests/bpf/%.bpf.c,$(OUT)/tests/%.skel.h,$(TBPF_SRCS))
.PHONY: all deps run test test-unit test-bpf test-e2e matrix tsan asan asan-bins bench fuzz format \
	format-check clean

all: $(OUT)/tapir

deps:
	$(Q)tools/install-deps.sh build

$(OUT) $(OUT)/user $(OUT)/tests:
	$(Q)mkdir -p $@

$(OUT)/vmlinux.h: | $(OUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@

# DWARF goes (BTF and its line info stay): the skeleton embeds the object in the daemon, where
# 2 MB of debug sections would only cost memory.
$(OUT)/%.bpf.o: bpf/%.bpf.c $(VMLINUX_H) $(wildcard bpf/*.h include/tapir/*.h) | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@

# The compat variant is http.bpf.c built again with TAPIR_COMPAT.
$(OUT)/http_compat.bpf.o: bpf/http.bpf.c

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

$(USER_OBJS): $(SKELS)

$(OUT)/user/%.o: user/%.c | $(OUT)/user
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(OUT)/libtapir.a: $(CORE_OBJS)
	$(call msg,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(OUT)/tapir: $(OUT)/user/main.o $(OUT)/libtapir.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/tests/test_%: tests/unit/test_%.c $(OUT)/libtapir.a | $(OUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< $(OUT)/libtapir.a $(LDLIBS) -lcmocka -o $@

# HPACK is libnghttp2's (in PKGS: the daemon decodes HTTP/2 header blocks with it).

$(OUT)/tests/%.bpf.o: tests/bpf/%.bpf.c $(VMLINUX_H) $(wildcard include/tapir/*.h tests/bpf/*.h) | $(OUT)/tests
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -Itests/bpf -c $< -o $@

$(OUT)/tests/%.skel.h: $(OUT)/tests/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(OUT)/tests/test_%_run: tests/bpf/test_%_run.c $(OUT)/tests/%_run.skel.h $(OUT)/libtapir.a
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -I$(OUT)/tests -Itests/bpf -Itests/unit $< $(OUT)/libtapir.a $(LDLIBS) \
		-lcmocka -o $@

$(OUT)/tests/test_gpu: | $(FAKE_NVML)

$(FAKE_NVML): tests/fake_nvml/fake_nvml.c tests/fake_nvml/fake_nvml.h user/sources/nvml_abi.h | $(OUT)/tests
	$(call msg,CC-SO,$@)
	$(Q)$(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) -fPIC -shared $< -o $@

# The segment dropper of test_skb.py: a helper with a BPF skeleton of its own.
$(OUT)/tests/skb_drop: tests/helpers/skb_drop.c $(OUT)/tests/skb_drop.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -I$(OUT)/tests $< $(LDLIBS) -o $@

$(OUT)/tests/%: tests/helpers/%.c $(OUT)/libtapir.a | $(OUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< $(OUT)/libtapir.a $(LDLIBS) -o $@

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(OUT)/tapir --config $(CONFIG)

test:
	$(Q)tools/install-deps.sh all
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BINS) $(TBPF_BINS) $(HELPER_BINS) $(FAKE_NVML) \
		$(FUZZ_BINS) $(OUT)/tools/llm_server $(OUT)/tools/floor asan-bins
	$(Q)tests/run-all.sh

test-unit: $(UNIT_BINS)
	$(Q)tests/run-unit.sh $(UNIT_BINS)

test-e2e: all $(HELPER_BINS)
	$(Q)tests/run-e2e.sh

# The end-to-end suite against a daemon built with ThreadSanitizer (in build-tsan/): a data race
# makes the daemon exit with status 66, which fails the test that stops it.
TSAN_OPTIONS_E2E := halt_on_error=1 exitcode=66 second_deadlock_stack=1
tsan:
	$(Q)tools/install-deps.sh all
	$(Q)$(MAKE) --no-print-directory all $(HELPER_BINS) $(FAKE_NVML)
	$(Q)$(MAKE) --no-print-directory OUT=build-tsan CFLAGS="-O1 -g -fsanitize=thread" \
		build-tsan/tapir
	TAPIR_BIN=$(CURDIR)/build-tsan/tapir TSAN_OPTIONS="$(TSAN_OPTIONS_E2E)" tests/run-e2e.sh

# The unit suite and a short end-to-end run against a daemon built with AddressSanitizer and
# UBSan (in build-asan/); any report fails: UBSan stops at the first, and ASan's leak check at
# exit fails the daemon's stop. make test runs it too (tests/run-asan.sh).
ASAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
asan-bins:
	$(Q)$(MAKE) --no-print-directory OUT=build-asan CFLAGS="$(ASAN_CFLAGS)" build-asan/tapir \
		$(patsubst $(OUT)/%,build-asan/%,$(UNIT_BINS) $(TBPF_BINS) $(FAKE_NVML))
asan:
	$(Q)tools/install-deps.sh all
	$(Q)$(MAKE) --no-print-directory all $(HELPER_BINS) $(FAKE_NVML) asan-bins
	$(Q)tests/run-asan.sh

# The kernel matrix alone; MATRIX_KERNELS="5.10 host" takes a subset (tools/kernel-matrix.sh).
MATRIX_KERNELS ?=
matrix:
	$(Q)tools/install-deps.sh all
	$(Q)$(MAKE) --no-print-directory all $(OUT)/tests/http_client $(OUT)/tools/llm_server
	$(Q)tools/kernel-matrix.sh $(MATRIX_KERNELS)

bench: all $(OUT)/pingpong $(OUT)/tools/llm_server $(OUT)/tools/floor
	$(Q)tools/install-deps.sh all
	$(Q)tools/bench.sh

$(OUT)/pingpong: tools/pingpong.c | $(OUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@

# The floor under tapir's overhead: a minimal payload-reading tracer and the helpers' costs.
$(OUT)/tools/floor.bpf.o: tools/floor.bpf.c tools/floor.h $(VMLINUX_H) | $(OUT)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -Itools -c $< -o $@

$(OUT)/tools/floor.skel.h: $(OUT)/tools/floor.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name floor_bpf > $@

$(OUT)/tools/floor: tools/floor.c tools/floor.h $(OUT)/tools/floor.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itools -I$(OUT)/tools $< $(LDLIBS) -o $@

# Where the BPF time goes: each JIT image's source lines (for tools/lineprof.py), and the walk
# alone under BPF_PROG_TEST_RUN.
$(OUT)/tools/bpf-lines: tools/bpf-lines.c | $(OUT)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $< $(LDLIBS) -o $@

$(OUT)/tools/walkbench: tools/walkbench.c $(OUT)/tests/walk_run.skel.h
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -I$(OUT)/tests -Itests/bpf $< $(LDLIBS) -o $@

# A stand-in vLLM (OpenAI chat and text completions, streamed) for the matrix and the benchmark.
$(OUT)/tools/llm_server: tools/llm_server.c | $(OUT)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@

# Fuzz targets (tests/fuzz/): libFuzzer with ASan and UBSan, each with the sources it exercises
# built in. `make fuzz` runs each for FUZZ_SECONDS; `make test` runs each for 30 s.
FUZZ_SECONDS ?= 300
FUZZ_FLAGS  := -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude $(addprefix -I,$(USER_DIRS)) \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
               $(shell pkg-config --cflags yaml-0.1 libcurl json-c 2>/dev/null)
FUZZ_BINS   := $(OUT)/fuzz/fuzz_http $(OUT)/fuzz/fuzz_config $(OUT)/fuzz/fuzz_kubelet \
               $(OUT)/fuzz/fuzz_expo $(OUT)/fuzz/fuzz_promtext $(OUT)/fuzz/fuzz_llm \
               $(OUT)/fuzz/fuzz_llm_track $(OUT)/fuzz/fuzz_h2
$(OUT)/fuzz:
	$(Q)mkdir -p $@
$(OUT)/fuzz/fuzz_http: tests/fuzz/fuzz_http.c $(wildcard include/tapir/*.h) | $(OUT)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_FLAGS) $< -o $@
# config.c checks llm.paths with llm.c, which needs llm_wire.c and json-c.
$(OUT)/fuzz/fuzz_config: tests/fuzz/fuzz_config.c user/base/config.c user/sources/llm.c \
		user/sources/llm_wire.c | $(OUT)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_FLAGS) $^ -lyaml -lcrypt -ljson-c -o $@
$(OUT)/fuzz/fuzz_kubelet: tests/fuzz/fuzz_kubelet.c user/sources/kubelet.c user/expo/buf.c \
		user/base/log.c | $(OUT)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_FLAGS) $^ -lcurl -ljson-c -o $@
$(OUT)/fuzz/fuzz_expo: tests/fuzz/fuzz_expo.c user/expo/buf.c | $(OUT)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_FLAGS) $^ -lm -o $@

$(OUT)/fuzz/fuzz_promtext: tests/fuzz/fuzz_promtext.c user/sources/promtext.c user/sources/engine.c \
		| $(OUT)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_FLAGS) $^ -lm -o $@

$(OUT)/fuzz/fuzz_llm: tests/fuzz/fuzz_llm.c user/sources/llm.c user/sources/llm_wire.c \
		user/sources/llm.h user/sources/llm_wire.h | $(OUT)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_FLAGS) $(filter %.c,$^) -ljson-c -o $@

$(OUT)/fuzz/fuzz_llm_track: tests/fuzz/fuzz_llm_track.c user/sources/llm_track.c \
		user/sources/llm.c user/sources/llm_wire.c user/sources/llm_track.h \
		user/sources/llm.h user/sources/llm_wire.h $(wildcard include/tapir/*.h) | $(OUT)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_FLAGS) $(filter %.c,$^) -ljson-c -o $@

$(OUT)/fuzz/fuzz_h2: tests/fuzz/fuzz_h2.c user/sources/h2.c user/sources/h2.h tests/unit/h2_walk.h \
		$(wildcard include/tapir/*.h) | $(OUT)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(FUZZ_FLAGS) -Itests/unit $(filter %.c,$^) -lnghttp2 -o $@

fuzz:
	$(Q)tools/install-deps.sh all
	$(Q)$(MAKE) --no-print-directory $(FUZZ_BINS)
	$(Q)tests/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

FORMAT_SRCS = $(filter-out %/vmlinux.h,$(wildcard bpf/*.c bpf/*.h user/*.c user/*.h user/*/*.c user/*/*.h include/tapir/*.h tests/unit/*.c tests/helpers/*.c tests/bpf/*.c tests/bpf/*.h tests/fuzz/*.c tools/*.c))
format:
	$(Q)clang-format -i $(FORMAT_SRCS)

format-check:
	$(Q)clang-format --dry-run -Werror $(FORMAT_SRCS)

clean:
	$(Q)rm -rf $(OUT)

-include $(USER_OBJS:.o=.d) $(UNIT_BINS:=.d) $(TBPF_BINS:=.d)
