# ctr for sites and Debian-style packaging, from a built checkout:
#
#   make                                  npm run build (needs node_modules: npm ci)
#   make install PREFIX=/usr/local        or DESTDIR=pkg/ for a package
#   make install INSTALL_CTR_NAME=no      only ctr-hpc (where containerd's /usr/bin/ctr is)
#
# Installs PREFIX/lib/ctr (bin/ctr, dist/, the launcher, the production node_modules,
# slurm/ctr-srun), PREFIX/bin/ctr and PREFIX/bin/ctr-hpc (the same program: ctr-hpc for
# systems where Debian's containerd package puts its own ctr in /usr/bin; both are the
# launcher under the name ctr, which does what bin/ctr does without a shell), ctr-srun,
# the man pages, bash and zsh completion, and the SPANK plugin where it was built.
PREFIX            ?= /usr/local
DESTDIR           ?=
INSTALL_CTR_NAME  ?= yes
LIBDIR            := $(PREFIX)/lib/ctr
MANDIR            ?= $(PREFIX)/share/man
BASHCOMPDIR       ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR        ?= $(PREFIX)/share/zsh/site-functions
SLURM_PLUGINDIR   ?= $(PREFIX)/lib/slurm
D                 := $(DESTDIR)

all:
	npm run build

install:
	@test -r dist/src/cli/main.js -a -x native/build/ctr-launch -a -r dist/man/ctr.1 || \
	  { echo "make install: ctr is not built here: run make (npm run build) first" >&2; exit 1; }
	rm -rf $(D)$(LIBDIR)
	install -d $(D)$(LIBDIR)/bin $(D)$(LIBDIR)/dist $(D)$(LIBDIR)/native/build $(D)$(LIBDIR)/slurm $(D)$(PREFIX)/bin
	install -m 755 bin/ctr $(D)$(LIBDIR)/bin/ctr
	install -m 644 package.json $(D)$(LIBDIR)/package.json
	cp -R dist/src $(D)$(LIBDIR)/dist/src
	if [ -d dist/snapshot ]; then cp -R dist/snapshot $(D)$(LIBDIR)/dist/snapshot; fi
	install -m 755 native/build/ctr-launch $(D)$(LIBDIR)/native/build/ctr-launch
	ln -sfn ctr-launch $(D)$(LIBDIR)/native/build/ctr
	install -m 755 slurm/ctr-srun $(D)$(LIBDIR)/slurm/ctr-srun
	install -m 644 slurm/plugstack.conf slurm/README.md $(D)$(LIBDIR)/slurm/
	# The production dependencies only (npm ls --omit=dev), copied from node_modules.
	npm ls --omit=dev --all --parseable | tail -n +2 | sed 's|^$(CURDIR)/||' | \
	  while read -r dep; do mkdir -p "$(D)$(LIBDIR)/$$(dirname "$$dep")" && cp -R "$$dep" "$(D)$(LIBDIR)/$$dep" || exit 1; done
	ln -sfn ../lib/ctr/native/build/ctr $(D)$(PREFIX)/bin/ctr-hpc
	ln -sfn ../lib/ctr/slurm/ctr-srun $(D)$(PREFIX)/bin/ctr-srun
	if [ "$(INSTALL_CTR_NAME)" = yes ]; then ln -sfn ../lib/ctr/native/build/ctr $(D)$(PREFIX)/bin/ctr; fi
	install -d $(D)$(MANDIR)/man1 $(D)$(BASHCOMPDIR) $(D)$(ZSHCOMPDIR)
	install -m 644 dist/man/*.1 $(D)$(MANDIR)/man1/
	echo '.so man1/ctr.1' >$(D)$(MANDIR)/man1/ctr-hpc.1
	install -m 644 dist/completion/ctr.bash $(D)$(BASHCOMPDIR)/ctr
	ln -sfn ctr $(D)$(BASHCOMPDIR)/ctr-hpc
	install -m 644 dist/completion/_ctr $(D)$(ZSHCOMPDIR)/_ctr
	if [ -f native/build/ctr_spank.so ]; then install -d $(D)$(SLURM_PLUGINDIR) && install -m 755 native/build/ctr_spank.so $(D)$(SLURM_PLUGINDIR)/ctr_spank.so; fi

uninstall:
	rm -rf $(D)$(LIBDIR) $(D)$(PREFIX)/bin/ctr-hpc $(D)$(PREFIX)/bin/ctr-srun $(D)$(BASHCOMPDIR)/ctr $(D)$(BASHCOMPDIR)/ctr-hpc \
	  $(D)$(ZSHCOMPDIR)/_ctr $(D)$(SLURM_PLUGINDIR)/ctr_spank.so $(D)$(MANDIR)/man1/ctr.1 $(D)$(MANDIR)/man1/ctr-*.1
	case "$$(readlink $(D)$(PREFIX)/bin/ctr)" in ../lib/ctr/bin/ctr|../lib/ctr/native/build/ctr) rm -f $(D)$(PREFIX)/bin/ctr ;; esac

.PHONY: all install uninstall
