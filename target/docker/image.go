package docker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// ImageRepo is the repository of kafkatrial's own broker image; the tag is a hash of the binary inside.
const ImageRepo = "kafkatrial-broker"

// modulePath is this module's path: the source the image is built from.
const modulePath = "github.com/kafkatrial/kafkatrial"

// buildTimeout bounds compiling the binary and building the image (a cold Go build cache on a loaded machine
// takes a while; a warm one a few seconds).
const buildTimeout = 5 * time.Minute

// dockerfile puts the static binary alone in an empty image: no shell, no libc, nothing else to go wrong.
// An empty /tmp (mode 1777) is copied in because scratch has none and Go's os.TempDir assumes one.
const dockerfile = "FROM scratch\nCOPY kafkatrial /kafkatrial\nCOPY tmp /tmp\nENTRYPOINT [\"/kafkatrial\"]\n"

// BuildImage compiles a static kafkatrial binary (CGO_ENABLED=0 GOOS=linux) from this module's source and
// builds an image FROM scratch holding it, tagged kafkatrial-broker:<first 16 hex digits of the SHA-256 of
// the Dockerfile and binary>. An image with that tag already present is reused, and built images are kept, so a rerun costs one
// cached `go build`. Outside the module's source tree it falls back to the running executable when that is a
// static Linux binary. Only the newest few kafkatrial-broker images are kept. It returns the image reference.
func BuildImage(ctx context.Context, provider *testcontainers.DockerProvider) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "kafkatrial-image-")
	if err != nil {
		return "", fmt.Errorf("docker target: creating the image build context: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "kafkatrial")
	if root, rerr := ModuleRoot(); rerr == nil {
		if err := compile(ctx, root, bin); err != nil {
			return "", err
		}
	} else if err := copyStaticSelf(bin); err != nil {
		return "", fmt.Errorf("docker target: no kafkatrial binary to put in the image: %w; and %w", rerr, err)
	}
	sum, err := imageHash(bin)
	if err != nil {
		return "", err
	}
	ref := ImageRepo + ":" + sum
	if _, err := provider.Client().ImageInspect(ctx, ref); err == nil {
		return ref, nil
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", fmt.Errorf("docker target: writing the Dockerfile: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return "", fmt.Errorf("docker target: writing the image's /tmp: %w", err)
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return "", fmt.Errorf("docker target: writing the image's /tmp: %w", err)
	}
	var buildLog bytes.Buffer
	req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context: dir, Repo: ImageRepo, Tag: sum, KeepImage: true, BuildLogWriter: &limitedBuffer{b: &buildLog, max: 16 << 10},
	}}
	got, err := provider.BuildImage(ctx, req)
	if err != nil {
		return "", fmt.Errorf("docker target: building image %s: %w (build log: %s)", ref, err, strings.TrimSpace(buildLog.String()))
	}
	pruneImages(ctx, provider.Client(), got)
	return got, nil
}

// keptImages is how many kafkatrial-broker images survive a build: every source change makes a new one.
const keptImages = 3

// pruneImages removes kafkatrial-broker images beyond the keptImages newest, except keep. Removal is not
// forced, so an image a container still uses stays; failures are ignored (the next build tries again).
func pruneImages(ctx context.Context, cli client.APIClient, keep string) {
	res, err := cli.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("reference", ImageRepo)})
	if err != nil {
		return
	}
	imgs := res.Items
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].Created > imgs[j].Created })
	for i, im := range imgs {
		if i < keptImages || slices.Contains(im.RepoTags, keep) {
			continue
		}
		for _, tag := range im.RepoTags {
			_, _ = cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{PruneChildren: true})
		}
	}
}

// ModuleRoot finds the source tree of this module: `go env GOMOD` from the working directory (a test runs in
// its package directory, inside the module), else the nearest parent directory whose go.mod declares the
// module.
func ModuleRoot() (string, error) {
	if goBin, err := goCommand(); err == nil {
		out, err := exec.Command(goBin, "env", "GOMOD").Output()
		if err == nil {
			if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull && declaresModule(gomod) {
				return filepath.Dir(gomod), nil
			}
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the %s source: %w", modulePath, err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if declaresModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no %s source tree at or above %s", modulePath, wd)
		}
	}
}

// declaresModule reports whether the go.mod at path declares this module.
func declaresModule(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module"); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`) == modulePath
		}
	}
	return false
}

// goCommand finds the go tool: on PATH, else the one that built this binary.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no go command on PATH or at %s", p)
	}
	return p, nil
}

// compile builds ./cmd/kafkatrial of the module at root into out as a static Linux binary.
func compile(ctx context.Context, root, out string) error {
	goBin, err := goCommand()
	if err != nil {
		return fmt.Errorf("docker target: building the kafkatrial binary: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, "./cmd/kafkatrial")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	var stderr bytes.Buffer
	lb := &limitedBuffer{b: &stderr, max: 64 << 10}
	cmd.Stdout, cmd.Stderr = lb, lb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker target: CGO_ENABLED=0 go build ./cmd/kafkatrial in %s: %w: %s", root, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// copyStaticSelf copies the running executable to out if it is a kafkatrial command built as a statically
// linked Linux binary (no program interpreter), as a released kafkatrial built with CGO_ENABLED=0 is.
func copyStaticSelf(out string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the running executable: %w", err)
	}
	if err := checkStaticKafkatrial(self); err != nil {
		return err
	}
	data, err := os.ReadFile(self)
	if err != nil {
		return fmt.Errorf("reading %s: %w", self, err)
	}
	return os.WriteFile(out, data, 0o755)
}

// kafkatrialCommand is the import path of the command the image runs.
const kafkatrialCommand = modulePath + "/cmd/kafkatrial"

// checkStaticKafkatrial checks, by its contents and not its name, that path is the kafkatrial command built
// for Linux without a program interpreter; the error says what the file is instead.
func checkStaticKafkatrial(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a Linux (ELF) binary: %w", path, err)
	}
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			if b, err := io.ReadAll(io.LimitReader(p.Open(), 4096)); err == nil {
				interp = strings.TrimRight(string(b), "\x00")
			}
			if interp == "" {
				interp = "an interpreter"
			}
		}
	}
	f.Close()
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s carries no Go build information (%v), so it is not a kafkatrial binary", path, err)
	}
	if bi.Path != kafkatrialCommand {
		return fmt.Errorf("%s is the Go program %s, not %s", path, bi.Path, kafkatrialCommand)
	}
	if interp != "" {
		cgo := "unknown"
		for _, s := range bi.Settings {
			if s.Key == "CGO_ENABLED" {
				cgo = s.Value
			}
		}
		return fmt.Errorf("%s is kafkatrial but dynamically linked (program interpreter %s, CGO_ENABLED=%s): build it with CGO_ENABLED=0", path, interp, cgo)
	}
	return nil
}

// imageHash names an image by what is in it: the Dockerfile and the binary.
func imageHash(bin string) (string, error) {
	f, err := os.Open(bin)
	if err != nil {
		return "", fmt.Errorf("docker target: hashing the kafkatrial binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	io.WriteString(h, dockerfile)
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("docker target: hashing the kafkatrial binary: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// limitedBuffer keeps the first max bytes written and drops the rest, so a runaway build log stays bounded.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
