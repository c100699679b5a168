-- 0009: a message's length is counted in SMS segments, not characters (issue 12): GSM-7
-- (160 septets, 153 per part; the extension table's characters cost two) or UCS-2 (70
-- UTF-16 code units, 67 per part) for anything else, Korean included. The same rule as
-- libcommon/sms_segments.c; the notifier holds a message to SMS_MAX_SEGMENTS (1..10), the
-- database to the highest budget it may be given.

CREATE FUNCTION dozen_sms_segments(body text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    -- the default alphabet: printable ASCII but the backtick and the extension table,
    -- LF, CR, and these
    basic constant text := E'\n\r !"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz'
                           || '£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà';
    ext constant text := E'\f^{}\\[~]|€';
    gsm boolean := true;
    ch text;
    cost integer;
    total integer := 0;
    single integer;
    part integer;
    used integer := 0;
    parts integer := 1;
BEGIN
    FOREACH ch IN ARRAY regexp_split_to_array(body, '') LOOP
        IF strpos(basic, ch) > 0 THEN
            total := total + 1;
        ELSIF strpos(ext, ch) > 0 THEN
            total := total + 2;
        ELSE
            gsm := false;
            EXIT;
        END IF;
    END LOOP;
    IF gsm THEN
        single := 160; part := 153;
    ELSE
        single := 70; part := 67;
        total := 0;
        FOREACH ch IN ARRAY regexp_split_to_array(body, '') LOOP
            total := total + CASE WHEN ascii(ch) > 65535 THEN 2 ELSE 1 END;
        END LOOP;
    END IF;
    IF total <= single THEN
        RETURN 1;
    END IF;
    -- parts filled in order; a character (escape pair, surrogate pair) never split
    FOREACH ch IN ARRAY regexp_split_to_array(body, '') LOOP
        IF gsm THEN
            cost := CASE WHEN strpos(ext, ch) > 0 THEN 2 ELSE 1 END;
        ELSE
            cost := CASE WHEN ascii(ch) > 65535 THEN 2 ELSE 1 END;
        END IF;
        IF used + cost > part THEN
            parts := parts + 1;
            used := 0;
        END IF;
        used := used + cost;
    END LOOP;
    RETURN parts;
END;
$$;

ALTER TABLE deliveries DROP CONSTRAINT deliveries_body_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_body_check
    CHECK (body <> '' AND dozen_sms_segments(body) <= 10);
