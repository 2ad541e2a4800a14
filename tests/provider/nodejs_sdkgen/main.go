// sdkgen SCHEMA.json OUT_DIR: Pulumi's own Node.js SDK generator (github.com/pulumi/pulumi/pkg/v3/codegen/nodejs,
// what pulumi-language-nodejs runs for `pulumi package add` and `pulumi package gen-sdk`) over a package schema,
// with the schema bound and validated by pkg/v3/codegen/schema first.
//
// The engine tests use it only where `pulumi package add` cannot generate the SDK itself: the Node.js language
// host that scripts/pulumi-engine.sh can build (sdk/v3 v3.68.0; the Go module proxy refuses the newer host
// modules) predates the GeneratePackage RPC ("method GeneratePackage not implemented"). Built by the tests into
// the imm-faces cache against the same pkg/v3 version as the CLI.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/blang/semver"

	"github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: sdkgen SCHEMA.json OUT_DIR")
		os.Exit(2)
	}
	data, err := os.ReadFile(os.Args[1])
	check(err)
	var spec schema.PackageSpec
	check(json.Unmarshal(data, &spec))
	pkg, diags, err := schema.BindSpec(spec, none{}, schema.ValidationOptions{})
	check(err)
	if diags.HasErrors() {
		fmt.Fprintln(os.Stderr, diags.Error())
		os.Exit(1)
	}
	files, err := nodejs.GeneratePackage("pulumi-language-nodejs", pkg, nil, nil, true, none{})
	check(err)
	for name, content := range files {
		path := filepath.Join(os.Args[2], name)
		check(os.MkdirAll(filepath.Dir(path), 0o755))
		check(os.WriteFile(path, content, 0o644))
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// none loads no other package: the imm schema refers to none.
type none struct{}

func (none) LoadPackage(name string, _ *semver.Version) (*schema.Package, error) {
	return nil, fmt.Errorf("package %s: the imm schema refers to no other package", name)
}

func (none) LoadPackageV2(_ context.Context, d *schema.PackageDescriptor) (*schema.Package, error) {
	return none{}.LoadPackage(d.Name, nil)
}

func (none) LoadPackageReference(name string, _ *semver.Version) (schema.PackageReference, error) {
	return nil, fmt.Errorf("package %s: the imm schema refers to no other package", name)
}

func (none) LoadPackageReferenceV2(_ context.Context, d *schema.PackageDescriptor) (schema.PackageReference, error) {
	return none{}.LoadPackageReference(d.Name, nil)
}
