package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// keyDelimiter replaces viper's "." so dotted Kafka names stay single flat
// keys: with "." viper would nest log.retention.ms under log.retention,
// and a key that is also a prefix of another (common in Kafka files) would
// shadow it. It can never occur in a key.
const keyDelimiter = "\x00"

// Load builds the configuration from args (the command line without the
// program name), the file named by --config, and environ (KEY=value
// strings as os.Environ returns them; passed in so tests need not touch
// the process environment). Flags override the environment, which
// overrides the file, which overrides the defaults.
//
// Besides the configuration it returns, sorted, the keys of the file that
// this broker does not know; they are ignored. --help prints usage to
// standard error and returns pflag.ErrHelp. Any other error is one line.
func Load(args []string, environ []string) (*Config, []string, error) {
	fs, configPath := newFlagSet()
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected argument %q: settings are given as --key=value", fs.Arg(0))
	}

	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelimiter), viper.WithDecoderRegistry(fileDecoders))
	var unknown []string
	inFile := map[string]bool{}
	if *configPath != "" {
		if err := readFile(v, *configPath); err != nil {
			return nil, nil, err
		}
		// Nothing but the file is bound yet, so these are its keys.
		for _, name := range v.AllKeys() {
			if knownKey(name) {
				inFile[name] = true
			} else {
				unknown = append(unknown, name)
			}
		}
		slices.Sort(unknown)
	}
	for _, k := range keys {
		if err := v.BindPFlag(k.name, fs.Lookup(k.name)); err != nil {
			return nil, nil, err
		}
	}
	// Viper reads bound variables from the process environment only, so
	// the variables from environ are merged over the file's values
	// instead; flags still take precedence over both.
	env := envValues(environ)
	if err := v.MergeConfigMap(env); err != nil {
		return nil, nil, err
	}

	source := func(name string) string {
		switch {
		case fs.Changed(name):
			return "flag --" + name
		case env[name] != nil:
			return "env " + envName(name)
		case inFile[name]:
			return "file " + *configPath
		}
		return ""
	}

	c := Default()
	c.explicit = map[string]string{}
	for _, k := range keys {
		if !v.IsSet(k.name) {
			continue
		}
		s := strings.TrimSpace(v.GetString(k.name))
		c.explicit[k.name] = s
		if e := k.set(c, s); e != nil {
			e.Key, e.Source = k.name, source(k.name)
			return nil, nil, e
		}
	}
	if _, ok := c.explicit["advertised.listeners"]; !ok {
		c.AdvertisedListeners = advertise(c.ClientListeners())
	}
	if e := aliasConflict(c.explicit); e != nil {
		e.Source = source(e.Key)
		return nil, nil, e
	}
	if err := c.Validate(); err != nil {
		var e *ValueError
		if errors.As(err, &e) {
			e.Source = source(e.Key)
		}
		return nil, nil, err
	}
	return c, unknown, nil
}

// aliasConflict refuses broker.id and node.id set to different ids, which
// Kafka refuses too: either could be the mistake.
func aliasConflict(explicit map[string]string) *ValueError {
	b, bok := explicit["broker.id"]
	n, nok := explicit["node.id"]
	if !bok || !nok {
		return nil
	}
	// Both have been parsed successfully by now.
	bid, _ := strconv.ParseInt(b, 10, 32)
	nid, _ := strconv.ParseInt(n, 10, 32)
	if bid == nid {
		return nil
	}
	return &ValueError{
		Key:      "broker.id",
		Value:    b,
		Expected: fmt.Sprintf("the same id as node.id (%d), or no value: broker.id is an alias of node.id", nid),
	}
}

// envValues picks the KAFKA_* variables that name a key. Others, such as
// KAFKA_HEAP_OPTS or settings this broker does not implement, are the
// Docker image's business and are ignored. An empty variable counts as
// unset, as it does for viper and for Compose files that list a variable
// without a value.
func envValues(environ []string) map[string]any {
	byEnv := make(map[string]string, len(keys))
	for _, k := range keys {
		byEnv[envName(k.name)] = k.name
	}
	out := map[string]any{}
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if key, ok := byEnv[name]; ok && value != "" {
			out[key] = value
		}
	}
	return out
}

// readFile loads the --config file into v, picking the format from the
// file's extension.
func readFile(v *viper.Viper, path string) error {
	ext := filepath.Ext(path)
	format := strings.ToLower(strings.TrimPrefix(ext, "."))
	if _, ok := fileDecoders[format]; !ok {
		return fmt.Errorf("config file %s: unsupported extension %q: expected .properties, .yaml or .yml", path, ext)
	}
	v.SetConfigFile(path)
	v.SetConfigType(format)
	if err := v.ReadInConfig(); err != nil {
		// Viper prefixes decoding errors with its own wording; the
		// decoder's message says what is wrong.
		var pe viper.ConfigParseError
		if errors.As(err, &pe) {
			err = pe.Unwrap()
		}
		return fmt.Errorf("config file %s: %s", path, oneLine(err.Error()))
	}
	return nil
}

// oneLine joins a possibly multi-line message, as YAML errors can be, so
// the error main prints stays on one line.
func oneLine(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, " ")
}

// flagValue keeps a flag's text as given, so a value gets the same parsing
// and error message whether it comes from a flag, the environment or a
// file. Its type is the Kafka type name, which also keeps viper from
// converting the flag with its lenient casts (those turn "abc" into 0 for
// flags of type "int").
type flagValue struct{ text, typ string }

func (f *flagValue) String() string     { return f.text }
func (f *flagValue) Set(s string) error { f.text = s; return nil }
func (f *flagValue) Type() string       { return f.typ }

// newFlagSet defines --config and one flag per key, named after the key.
func newFlagSet() (*pflag.FlagSet, *string) {
	fs := pflag.NewFlagSet("broker", pflag.ContinueOnError)
	path := fs.String("config", "", "read settings from this `FILE` (.properties, .yaml or .yml)")
	defaults := Default()
	for _, k := range keys {
		f := fs.VarPF(&flagValue{text: k.get(defaults), typ: k.typ}, k.name, "", k.doc)
		if k.typ == "BOOLEAN" {
			f.NoOptDefVal = "true"
		}
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [--config FILE] [--KEY=VALUE ...]\n\n"+
			"Every KEY can also be set in the environment as KAFKA_ followed by the key\n"+
			"upper-cased with dots as underscores (log.dirs: KAFKA_LOG_DIRS). Flags override\n"+
			"the environment, which overrides the file.\n\n%s",
			filepath.Base(os.Args[0]), fs.FlagUsages())
	}
	return fs, path
}
