import { describe, expect, test } from "bun:test";
import { redact, redactOptionList, redactOptions } from "../../src/redact.ts";

describe("secrets in mount options", () => {
  test("every key that names a secret is masked, whatever its spelling", () => {
    for (const key of ["password", "password2", "PASSWORD", "passwd", "pass", "passphrase_passwd", "secret", "token", "auth.token"]) {
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

  test("what is not a secret is left as it is", () => {
    const plain = "size=1m,uid=1000,addr=10.0.0.1,user=passenger,nfsvers=4";
    expect(redactOptionList(plain)).toBe(plain);
    expect(redact(plain)).toBe(plain);
  });

  test("a volume's options: secret keys masked whole, secrets inside the others' values", () => {
    const shown = redactOptions({ o: "size=1m,password2=x", password: "hunter2", token: "abc", device: "//srv/share", type: "cifs" });
    expect({ ...shown }).toEqual({ o: "size=1m,password2=********", password: "********", token: "********", device: "//srv/share", type: "cifs" });
  });
});
