import { describe, expect, test } from "bun:test";
import { redact, redactOptionList, redactOptions } from "../../src/redact.ts";

describe("secrets in mount options", () => {
  test("every key that names a secret is masked, whatever its spelling", () => {
    for (const key of ["password", "password2", "PASSWORD", "passwd", "pass", "passphrase_passwd", "secret", "token", "auth.token", "app-token", "my_password"]) {
      expect(redactOptionList(`size=1m,${key}=hunter2,vers=3.0`)).toBe(`size=1m,${key}=********,vers=3.0`);
      expect(redact(`mount -o ${key}=hunter2`)).toBe(`mount -o ${key}=********`);
    }
  });

  test("a value runs to the comma that ends its option: quotes, spaces and doubled commas are in it", () => {
    expect(redactOptionList(`password=hun"ter2,vers=3.0`)).toBe("password=********,vers=3.0");
    expect(redactOptionList("password=it's me,vers=3.0")).toBe("password=********,vers=3.0");
    expect(redactOptionList("password=a,,b,,c,vers=3.0")).toBe("password=********,vers=3.0");
    expect(redactOptionList("password=x")).toBe("password=********");
    // ecryptfs nests a passphrase's key inside another option's value.
    expect(redactOptionList("key=passphrase:passphrase_passwd=abc,ecryptfs_cipher=aes")).toBe("key=passphrase:passphrase_passwd=********,ecryptfs_cipher=aes");
  });

  test("in free text a value also ends at whitespace, where the message goes on", () => {
    expect(redact(`volume "v": -o password=hun"ter2 refused`)).toBe(`volume "v": -o password=******** refused`);
    expect(redact("password=a,,b,vers=3.0: invalid argument")).toBe("password=********,vers=3.0: invalid argument");
  });

  test("what is not a secret is left as it is: a word holding pass, secret or token inside is no key of a secret", () => {
    const plain = "size=1m,uid=1000,addr=10.0.0.1,user=passenger,nfsvers=4,compass=north,bypass=1,notoken=2";
    expect(redactOptionList(plain)).toBe(plain);
    expect(redact(plain)).toBe(plain);
    expect(redact('snapshot "compass=north": not found')).toBe('snapshot "compass=north": not found');
    // A secret's mask keeps the quote that closes it, and the rest of the message.
    expect(redact('snapshot "app-token=v1": already exists')).toBe('snapshot "app-token=********": already exists');
    expect(redact('option "password=hun"ter2" refused')).toBe('option "password=********" refused');
  });

  test("an address's password and cifs's user=name%password are masked, the rest of the line kept", () => {
    expect(redact("mount //bob:hunter2@srv/share on /mnt: permission denied")).toBe("mount //bob:********@srv/share on /mnt: permission denied");
    expect(redact("plugin http://u:p@ss@host:8080/x: refused")).toBe("plugin http://u:********@host:8080/x: refused");
    expect(redact("//srv/share and //user@srv/share")).toBe("//srv/share and //user@srv/share");
    expect(redactOptionList("device=//bob:hunter2@srv/share,vers=3.0")).toBe("device=//bob:********@srv/share,vers=3.0");
    expect(redactOptionList("username=bob%hun ter2,vers=3.0")).toBe("username=bob%********,vers=3.0");
    expect(redact("mount -o user=bob%hunter2,vers=3.0 failed")).toBe("mount -o user=bob%********,vers=3.0 failed");
  });

  test("a volume's options: secret keys masked whole, secrets inside the others' values", () => {
    const shown = redactOptions({ o: "size=1m,password2=x", password: "hunter2", token: "abc", device: "//srv/share", type: "cifs" });
    expect({ ...shown }).toEqual({ o: "size=1m,password2=********", password: "********", token: "********", device: "//srv/share", type: "cifs" });
  });
});
