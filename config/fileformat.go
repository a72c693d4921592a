package config

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// fileDecoders are the config file formats, by extension. Viper no longer
// decodes Java properties itself, and both decoders hand viper a flat map
// of dotted keys to strings, so every source reaches the key parsers in the
// same shape.
var fileDecoders = decoderRegistry{
	"properties": decodeFunc(decodeProperties),
	"yaml":       decodeFunc(decodeYAML),
	"yml":        decodeFunc(decodeYAML),
}

type decoderRegistry map[string]viper.Decoder

func (r decoderRegistry) Decoder(format string) (viper.Decoder, error) {
	if d, ok := r[format]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("no decoder for format %q", format)
}

type decodeFunc func(b []byte, out map[string]any) error

func (f decodeFunc) Decode(b []byte, out map[string]any) error { return f(b, out) }

// decodeProperties reads the Java properties format as
// java.util.Properties.load does: # and ! comments, key and value
// separated by '=', ':' or white space, a trailing backslash continuing
// the line, and backslash escapes including \uXXXX.
func decodeProperties(b []byte, out map[string]any) error {
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	lines := strings.Split(strings.ReplaceAll(text, "\r", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := trimLeftBlank(lines[i])
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		for continued(line) {
			line = line[:len(line)-1]
			if i+1 == len(lines) {
				break
			}
			i++
			line += trimLeftBlank(lines[i])
		}
		k, value := splitProperty(line)
		key, err := unescape(k)
		if err == nil {
			value, err = unescape(value)
		}
		if err != nil {
			return fmt.Errorf("line %d: %v", lineNo, err)
		}
		out[key] = value
	}
	return nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

func trimLeftBlank(s string) string {
	return strings.TrimLeft(s, " \t\f")
}

// continued reports whether a line ends in an odd number of backslashes,
// the last of which joins it to the next line.
func continued(line string) bool {
	n := 0
	for n < len(line) && line[len(line)-1-n] == '\\' {
		n++
	}
	return n%2 == 1
}

// splitProperty splits a logical line into its still escaped key and value.
// The key ends at the first unescaped '=', ':' or blank; blanks around the
// separator are not part of either.
func splitProperty(line string) (key, value string) {
	end := len(line)
	for i := 0; i < len(line); i++ {
		if line[i] == '\\' {
			i++
			continue
		}
		if line[i] == '=' || line[i] == ':' || isBlank(line[i]) {
			end = i
			break
		}
	}
	rest := trimLeftBlank(line[end:])
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = trimLeftBlank(rest[1:])
	}
	return line[:end], rest
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			sb.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			break
		}
		switch s[i] {
		case 't':
			sb.WriteByte('\t')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 'f':
			sb.WriteByte('\f')
		case 'u':
			r, err := hex4(s[i+1:])
			if err != nil {
				return "", err
			}
			i += 4
			// Characters outside the BMP are written as two \u escapes,
			// one per UTF-16 surrogate.
			if utf16.IsSurrogate(r) && strings.HasPrefix(s[i+1:], `\u`) {
				if low, err := hex4(s[i+3:]); err == nil {
					if pair := utf16.DecodeRune(r, low); pair != unicode.ReplacementChar {
						r = pair
						i += 6
					}
				}
			}
			sb.WriteRune(r)
		default:
			sb.WriteByte(s[i])
		}
	}
	return sb.String(), nil
}

func hex4(s string) (rune, error) {
	if len(s) < 4 {
		return 0, fmt.Errorf(`malformed \u escape: need four hex digits`)
	}
	n, err := strconv.ParseUint(s[:4], 16, 16)
	if err != nil {
		return 0, fmt.Errorf(`malformed \u escape %q: need four hex digits`, `\u`+s[:4])
	}
	return rune(n), nil
}

// decodeYAML reads a YAML mapping. Keys may be written flat ("log.dirs:")
// or nested ("log: {dirs: ...}"); both become the dotted key. Scalars are
// turned back into text and lists into comma-separated text, the form the
// same value takes in a properties file.
func decodeYAML(b []byte, out map[string]any) error {
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	return flattenYAML("", doc, out)
}

func flattenYAML(prefix string, node any, out map[string]any) error {
	join := func(k any) string {
		if prefix == "" {
			return fmt.Sprint(k)
		}
		return prefix + "." + fmt.Sprint(k)
	}
	switch n := node.(type) {
	case map[string]any:
		for k, v := range n {
			if err := flattenYAML(join(k), v, out); err != nil {
				return err
			}
		}
	case map[any]any:
		for k, v := range n {
			if err := flattenYAML(join(k), v, out); err != nil {
				return err
			}
		}
	case []any:
		items := make([]string, len(n))
		for i, item := range n {
			s, ok := yamlScalar(item)
			if !ok {
				return fmt.Errorf("%s: expected a value or a list of values", prefix)
			}
			items[i] = s
		}
		out[prefix] = strings.Join(items, ",")
	default:
		s, ok := yamlScalar(n)
		if !ok {
			return fmt.Errorf("%s: expected a value or a list of values", prefix)
		}
		out[prefix] = s
	}
	return nil
}

func yamlScalar(v any) (string, bool) {
	switch s := v.(type) {
	case nil:
		return "", true
	case string:
		return s, true
	case float64:
		// 'f' keeps integral floats such as 1e6 readable as integers.
		return strconv.FormatFloat(s, 'f', -1, 64), true
	case map[string]any, map[any]any, []any:
		return "", false
	}
	return fmt.Sprint(v), true
}
