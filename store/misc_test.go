package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

func TestPolicyVersions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())

		v1, err := s.PutPolicy(ctx, PolicyAttestation, "default", "package a\n")
		if err != nil {
			t.Fatalf("PutPolicy: %v", err)
		}
		v2, err := s.PutPolicy(ctx, PolicyAttestation, "default", "package b\n")
		if err != nil {
			t.Fatalf("PutPolicy: %v", err)
		}
		if v1.Version != 1 || v2.Version != 2 || v1.Digest == v2.Digest {
			t.Errorf("versions %d, %d with digests %s, %s; want 1, 2 and different digests", v1.Version, v2.Version, v1.Digest, v2.Digest)
		}
		sum := sha256.Sum256([]byte("package b\n"))
		if v2.Digest != hex.EncodeToString(sum[:]) {
			t.Errorf("digest = %s, want the hex SHA-256 of the module", v2.Digest)
		}
		if _, err := s.PutPolicy(ctx, PolicyResource, "default", "package r\n"); err != nil {
			t.Fatalf("PutPolicy resource: %v", err)
		}

		got, err := s.GetPolicy(ctx, PolicyAttestation, "default")
		if err != nil || got.Version != 2 || got.Module != "package b\n" {
			t.Errorf("GetPolicy = %+v, %v; want version 2", got, err)
		}
		all, err := s.ListPolicies(ctx, "")
		if err != nil || len(all) != 2 {
			t.Errorf("ListPolicies(all) = %d entries, %v; want 2", len(all), err)
		}
		res, err := s.ListPolicies(ctx, PolicyResource)
		if err != nil || len(res) != 1 || res[0].Kind != PolicyResource {
			t.Errorf("ListPolicies(resource) = %+v, %v", res, err)
		}

		if _, err := s.PutPolicy(ctx, "other", "x", "package x\n"); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutPolicy of unknown kind: err = %v, want ErrInvalid", err)
		}
		if err := s.DeletePolicy(ctx, PolicyAttestation, "default"); err != nil {
			t.Errorf("DeletePolicy: %v", err)
		}
		if _, err := s.GetPolicy(ctx, PolicyAttestation, "default"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetPolicy after delete: err = %v, want ErrNotFound", err)
		}
	})
}

func TestReferenceValueExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		s := open(t, b.config())
		now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

		add := func(name, value string, expires time.Time) {
			t.Helper()
			if _, err := s.AddReferenceValue(ctx, ReferenceValue{Name: name, Value: value, Expires: expires}); err != nil {
				t.Fatalf("AddReferenceValue %s=%s: %v", name, value, err)
			}
		}
		add("snp.measurement", "aa", time.Time{})
		add("snp.measurement", "bb", now.Add(time.Hour))
		add("snp.measurement", "cc", now.Add(-time.Hour))
		add("tdx.mrtd", "dd", time.Time{})
		add("snp.host_data", "ee", now.Add(-time.Minute))

		active, err := s.ActiveReferenceValues(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := active["snp.host_data"]
		if !ok {
			t.Errorf("snp.host_data, whose only value expired, is missing; a policy would stop checking host data")
		}
		if len(got) != 0 {
			t.Errorf("active snp.host_data = %v, want an empty list", got)
		}
		if got := active["snp.measurement"]; len(got) != 2 || got[0] != "aa" || got[1] != "bb" {
			t.Errorf("active snp.measurement = %v, want [aa bb]", got)
		}
		if got := active["tdx.mrtd"]; len(got) != 1 {
			t.Errorf("active tdx.mrtd = %v, want [dd]", got)
		}

		// Adding an existing value replaces its expiry.
		add("snp.measurement", "cc", time.Time{})
		all, err := s.ListReferenceValues(ctx, "snp.measurement")
		if err != nil || len(all) != 3 {
			t.Fatalf("ListReferenceValues = %d, %v; want 3", len(all), err)
		}
		if !all[2].Expires.IsZero() {
			t.Errorf("re-added value keeps expiry %v, want none", all[2].Expires)
		}

		if err := s.RemoveReferenceValue(ctx, "snp.measurement", ""); err != nil {
			t.Errorf("RemoveReferenceValue all: %v", err)
		}
		if err := s.RemoveReferenceValue(ctx, "snp.measurement", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("RemoveReferenceValue of empty name: err = %v, want ErrNotFound", err)
		}
	})
}

func TestCollateralCache(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		ctx := context.Background()
		c := open(t, b.config()).Collateral()
		fetched := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		item := CollateralItem{Key: "snp/vcek/Milan/abc", Data: []byte{0x30, 0x82, 0x01}, ContentType: "application/pkix-cert",
			FetchedAt: fetched, NextUpdate: fetched.Add(24 * time.Hour)}

		if err := c.Put(ctx, item); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, err := c.Get(ctx, item.Key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !bytes.Equal(got.Data, item.Data) || got.ContentType != item.ContentType ||
			!got.FetchedAt.Equal(item.FetchedAt) || !got.NextUpdate.Equal(item.NextUpdate) {
			t.Errorf("Get = %+v, want %+v", got, item)
		}

		item.Data = []byte("replaced")
		if err := c.Put(ctx, item); err != nil {
			t.Fatalf("Put replace: %v", err)
		}
		if err := c.Put(ctx, CollateralItem{Key: "tdx/pck-crl", Data: []byte("crl")}); err != nil {
			t.Fatalf("Put: %v", err)
		}
		list, err := c.List(ctx, "snp/")
		if err != nil || len(list) != 1 || list[0].Key != item.Key || list[0].Data != nil {
			t.Errorf("List(snp/) = %+v, %v; want one item without data", list, err)
		}
		if _, err := c.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get of missing key: err = %v, want ErrNotFound", err)
		}
	})
}
