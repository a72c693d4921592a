package config

import (
	"reflect"
	"testing"
)

func TestDecodeProperties(t *testing.T) {
	input := "# comment\r\n" +
		"! also a comment \\\n" +
		"   \n" +
		"a=1\n" +
		"b = 2\n" +
		"c:3\n" +
		"d 4\n" +
		"e\t=  spaced value  \n" +
		"f=one,\\\n" +
		"    two,\\\n" +
		"    three\n" +
		"g=ends with backslash\\\\\n" +
		"h\\=i\\:j=k\n" +
		"l=tab\\tnew\\nline\n" +
		"m=\\u00e9\\uD83D\\uDE00\n" +
		"n\n" +
		"o=\n" +
		"a=last wins\r" +
		"p=\\q\\\\"
	want := map[string]any{
		"a":     "last wins",
		"b":     "2",
		"c":     "3",
		"d":     "4",
		"e":     "spaced value  ",
		"f":     "one,two,three",
		"g":     `ends with backslash\`,
		"h=i:j": "k",
		"l":     "tab\tnew\nline",
		"m":     "é😀",
		"n":     "",
		"o":     "",
		"p":     `q\`,
	}
	got := map[string]any{}
	if err := decodeProperties([]byte(input), got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decodeProperties =\n%q\nwant\n%q", got, want)
	}
}

func TestDecodePropertiesContinuationAtEnd(t *testing.T) {
	got := map[string]any{}
	if err := decodeProperties([]byte("a=b\\"), got); err != nil {
		t.Fatal(err)
	}
	if got["a"] != "b" {
		t.Errorf("a = %q, want b", got["a"])
	}
}

func TestDecodePropertiesBadEscape(t *testing.T) {
	for _, input := range []string{"a=\\u12", "a=\\uZZZZ", "\\u1=x"} {
		if err := decodeProperties([]byte(input), map[string]any{}); err == nil {
			t.Errorf("%q: no error", input)
		}
	}
}

func TestDecodeYAML(t *testing.T) {
	input := `
listeners: PLAINTEXT://:9092
log:
  retention:
    hours: 24
    bytes: -1
  dirs: [/a]
auto.create.topics.enable: false
message.max.bytes: 1e6
cluster.id:
log.cleanup.policy:
  - delete
  - compact
1: numeric key
`
	want := map[string]any{
		"listeners":                 "PLAINTEXT://:9092",
		"log.retention.hours":       "24",
		"log.retention.bytes":       "-1",
		"log.dirs":                  "/a",
		"auto.create.topics.enable": "false",
		"message.max.bytes":         "1000000",
		"cluster.id":                "",
		"log.cleanup.policy":        "delete,compact",
		"1":                         "numeric key",
	}
	got := map[string]any{}
	if err := decodeYAML([]byte(input), got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decodeYAML =\n%q\nwant\n%q", got, want)
	}
}
